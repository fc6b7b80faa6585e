// Command run compares `kctr run --rm` with `ctr run --rm` of the same
// containerd version, in the same run: with no network (both), and kctr's
// default bridge network against ctr without one (what a user of each gets
// by default). It prints medians and ratios.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kctr")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	runs := flag.Int("runs", 15, "runs per variant")
	flag.Parse()
	if err := run(*binDir, *version, *runs); err != nil {
		fmt.Fprintf(os.Stderr, "bench/run: %v\n", err)
		os.Exit(1)
	}
}

func run(binDir, version string, runs int) error {
	ctx := context.Background()
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{Version: version})
	if err != nil {
		return err
	}
	defer daemon.Stop()
	ctrBin := filepath.Join(daemon.BinDir(), "ctr")
	if _, err := os.Stat(ctrBin); err != nil {
		ctrBin = "/usr/bin/ctr"
	}
	kctrBin, err := filepath.Abs(filepath.Join(binDir, "kctr"))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kctr-bench-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	const bridge = "kctrbench0"
	defer testenv.PruneEmptyCNIChains()
	defer testenv.RemoveBridge(bridge, "kctr-"+bridge)

	img, err := testimages.NewBuilder("").Busybox()
	if err != nil {
		return err
	}
	archive := filepath.Join(work, "busybox.tar")
	const ref = "localhost/bench/busybox:1"
	if err := testimages.WriteOCIArchive(img, archive, ref); err != nil {
		return err
	}
	const ns = "bench"
	if _, err := measure.Command(ctrBin, "--address", daemon.Address(), "-n", ns, "images", "import", archive); err != nil {
		return err
	}
	kctr := func(args ...string) []string {
		return append([]string{kctrBin, "--address", daemon.Address(), "-n", ns, "--data-root", filepath.Join(work, "data"), "--netns-dir", filepath.Join(work, "netns"),
			"--cni-netconfpath", filepath.Join(work, "cni"), "--bridge-name", bridge, "--bridge-subnet", "10.234.0.0/24"}, args...)
	}
	variants := []struct {
		name string
		argv func(i int) []string
	}{
		{"ctr run --rm", func(i int) []string {
			return []string{ctrBin, "--address", daemon.Address(), "-n", ns, "run", "--rm", ref, fmt.Sprintf("bench-%d", i), "true"}
		}},
		{"kctr run --rm --net none", func(int) []string { return kctr("run", "--rm", "--net", "none", ref, "true") }},
		{"kctr run --rm (bridge)", func(int) []string { return kctr("run", "--rm", ref, "true") }},
	}
	// One warm-up each: first runs pay for unpacking and page cache.
	for _, v := range variants {
		if _, err := measure.Command(v.argv(runs)...); err != nil {
			return err
		}
	}
	fmt.Printf("containerd %s, busybox `true`, %d runs each (interleaved)\n", daemon.DaemonVersion(), runs)
	samples := make([][]time.Duration, len(variants))
	for i := 0; i < runs; i++ {
		for v, variant := range variants {
			d, err := measure.Command(variant.argv(i)...)
			if err != nil {
				return err
			}
			samples[v] = append(samples[v], d)
		}
	}
	medians := make([]time.Duration, len(variants))
	for v, variant := range variants {
		medians[v] = measure.Report(variant.name, samples[v])
	}
	measure.Ratio("ratio kctr --net none / ctr", medians[1], medians[0])
	measure.Ratio("ratio kctr bridge / ctr", medians[2], medians[0])
	return nil
}
