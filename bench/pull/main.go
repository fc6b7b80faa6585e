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
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kctr")
	ctrBin := flag.String("ctr", "", "ctr binary (default: the one beside the chosen containerd)")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	layers := flag.Int("layers", 20, "layers in the image")
	layerSize := flag.Int64("layer-size", 2<<20, "bytes per layer")
	contentKind := flag.String("content", "random", "layer content: random (does not compress) or text (compresses to about a quarter)")
	runs := flag.Int("runs", 7, "pulls per tool")
	extra := flag.String("kctr-flags", "", "extra flags for kctr pull, space separated (for experiments)")
	flag.Parse()
	if err := run(*binDir, *ctrBin, *version, *layers, *layerSize, *contentKind, *runs, strings.Fields(*extra)); err != nil {
		fmt.Fprintf(os.Stderr, "bench/pull: %v\n", err)
		os.Exit(1)
	}
}

func run(binDir, ctrBin, version string, layers int, layerSize int64, contentKind string, runs int, kctrFlags []string) error {
	build := testimages.MultiLayer
	switch contentKind {
	case "random":
	case "text":
		build = testimages.MultiLayerText
	default:
		return fmt.Errorf("--content %q: want random or text", contentKind)
	}
	ctx := context.Background()
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{Version: version})
	if err != nil {
		return err
	}
	defer daemon.Stop()
	if ctrBin == "" {
		ctrBin = filepath.Join(daemon.BinDir(), "ctr")
		if _, err := os.Stat(ctrBin); err != nil {
			ctrBin = "/usr/bin/ctr"
		}
	}
	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()

	img, err := build(layers, layerSize, 1)
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
		{"kctr pull", append(append([]string{kctrBin, "--address", daemon.Address(), "-n", ns, "pull", "-q"}, kctrFlags...), ref)},
		{"ctr pull", []string{ctrBin, "--address", daemon.Address(), "-n", ns, "images", "pull", "--plain-http", ref}},
	}
	client, err := daemon.Client(ctx, ns)
	if err != nil {
		return err
	}
	defer client.Close()
	nsCtx := namespaces.WithNamespace(ctx, ns)

	fmt.Printf("containerd %s, image of %d layers x %d KiB of %s, %d pulls each (alternating)\n", daemon.DaemonVersion(), layers, layerSize>>10, contentKind, runs)
	times := make([][]time.Duration, len(tools))
	for i := 0; i < runs; i++ {
		for t, tool := range tools {
			// Start from nothing: the image, its blobs and snapshots are
			// collected before each pull.
			if err := client.ImageService().Delete(nsCtx, ref, images.SynchronousDelete()); err != nil && i+t > 0 {
				return fmt.Errorf("remove image between runs: %w", err)
			}
			elapsed, err := measure.Command(tool.argv...)
			if err != nil {
				return err
			}
			times[t] = append(times[t], elapsed)
		}
	}
	kctrMedian := measure.Report(tools[0].name, times[0])
	ctrMedian := measure.Report(tools[1].name, times[1])
	measure.Ratio("ratio kctr pull / ctr pull", kctrMedian, ctrMedian)
	return nil
}
