// Command pull compares `kctr pull` with `ctr pull` of the same containerd
// version, in the same run, on a many-layer image served by a registry on
// 127.0.0.1. It prints medians and their ratio: these machines are noisy, so
// absolute times mean little on their own.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kctr")
	ctrBin := flag.String("ctr", "", "ctr binary (default: Debian's for 1.6, .tools/bin/ctr for 2.4)")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	layers := flag.Int("layers", 20, "layers in the image")
	layerSize := flag.Int64("layer-size", 2<<20, "bytes per layer")
	runs := flag.Int("runs", 7, "pulls per tool")
	flag.Parse()
	if err := run(*binDir, *ctrBin, *version, *layers, *layerSize, *runs); err != nil {
		fmt.Fprintf(os.Stderr, "bench/pull: %v\n", err)
		os.Exit(1)
	}
}

func run(binDir, ctrBin, version string, layers int, layerSize int64, runs int) error {
	ctx := context.Background()
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{Version: version})
	if err != nil {
		return err
	}
	defer daemon.Stop()
	if ctrBin == "" || version == "1.6" {
		ctrBin = filepath.Join(daemon.BinDir(), "ctr")
		if _, err := os.Stat(ctrBin); err != nil {
			ctrBin = "/usr/bin/ctr"
		}
	}
	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()

	img, err := testimages.MultiLayer(layers, layerSize, 1)
	if err != nil {
		return err
	}
	ref := registry.Host() + "/bench/layers:20"
	if err := testimages.Push(ctx, img, ref); err != nil {
		return err
	}
	kctrBin, err := filepath.Abs(filepath.Join(binDir, "kctr"))
	if err != nil {
		return err
	}
	const ns = "bench"
	tools := []struct {
		name string
		argv []string
	}{
		{"kctr pull", []string{kctrBin, "--address", daemon.Address(), "-n", ns, "pull", "-q", ref}},
		{"ctr pull", []string{ctrBin, "--address", daemon.Address(), "-n", ns, "images", "pull", "--plain-http", ref}},
	}
	client, err := daemon.Client(ctx, ns)
	if err != nil {
		return err
	}
	defer client.Close()
	nsCtx := namespaces.WithNamespace(ctx, ns)

	fmt.Printf("containerd %s, image of %d layers x %d KiB, %d pulls each (alternating)\n", daemon.DaemonVersion(), layers, layerSize>>10, runs)
	times := make([][]time.Duration, len(tools))
	for i := 0; i < runs; i++ {
		for t, tool := range tools {
			// Start from nothing: the image, its blobs and snapshots are
			// collected before each pull.
			if err := client.ImageService().Delete(nsCtx, ref, images.SynchronousDelete()); err != nil && i+t > 0 {
				return fmt.Errorf("remove image between runs: %w", err)
			}
			start := time.Now()
			out, err := exec.Command(tool.argv[0], tool.argv[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", tool.name, err, out)
			}
			times[t] = append(times[t], time.Since(start))
		}
	}
	medians := make([]time.Duration, len(tools))
	for t, tool := range tools {
		medians[t] = median(times[t])
		fmt.Printf("%-10s median %8.1f ms   (runs: %v)\n", tool.name, ms(medians[t]), roundAll(times[t]))
	}
	fmt.Printf("ratio kctr/ctr: %.2f\n", float64(medians[0])/float64(medians[1]))
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func roundAll(d []time.Duration) []string {
	out := make([]string, len(d))
	for i, v := range d {
		out[i] = fmt.Sprintf("%.0fms", ms(v))
	}
	return out
}
