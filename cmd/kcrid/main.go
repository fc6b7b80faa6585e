// Command kcrid serves the CRI (RuntimeService and ImageService) on top of
// containerd. This file only parses flags and wires the cri package.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/containerd/log"
	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/cri"
	"github.com/kctr/kctr/crilog"
)

func main() {
	// The shims start this binary as the container log writer.
	if crilog.IsWriterInvocation(os.Args) {
		os.Exit(crilog.RunWriter(os.Args))
	}
	app := &cli.App{
		Name:    "kcrid",
		Usage:   "a CRI server on containerd",
		Version: cri.Version,
		Flags:   flags(),
		Action:  run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kcrid:", err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	opts, err := resolve(c)
	if err != nil {
		return err
	}
	if err := log.SetLevel(opts.logLevel); err != nil {
		return fmt.Errorf("log level %q: %w", opts.logLevel, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	server, err := cri.New(ctx, opts.server)
	if err != nil {
		return err
	}
	l, err := cri.Listen(opts.listen)
	if err != nil {
		server.Stop()
		return err
	}
	log.G(ctx).WithField("listen", opts.listen).WithField("stream", server.StreamURL()).WithField("containerd", opts.server.ContainerdAddress).Info("kcrid serving")
	errc := make(chan error, 1)
	go func() { errc <- server.Serve(l) }()
	select {
	case <-ctx.Done():
		log.G(ctx).Info("signal received; stopping (containers keep running)")
		server.Stop()
		return nil
	case err := <-errc:
		server.Stop()
		return err
	}
}
