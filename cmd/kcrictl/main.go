// Command kcrictl is a crictl-compatible CLI for CRI runtimes: the same
// commands, flags, config file and output, plus `kcrictl endpoints`, which
// shows which endpoint was tried and why one was chosen.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, defaultConfig()))
}

// run executes the app and returns the exit code; every error becomes one
// "kcrictl: ..." message on stderr (the endpoint diagnosis may add lines).
func run(args []string, cfg *Config) int {
	app := newApp(cfg)
	// Ctrl-C ends following commands (logs -f, events, port-forward,
	// stats --watch) cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	code := 1
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(cfg.Stderr, "kcrictl: %s\n", msg)
	}
	return code
}

// metadataKey is where the Config lives in App.Metadata.
const metadataKey = "kcrictl"

func newApp(cfg *Config) *cli.App {
	app := &cli.App{
		Name:                   "kcrictl",
		Usage:                  "client for CRI runtimes, compatible with crictl",
		Version:                version,
		EnableBashCompletion:   true,
		UseShortOptionHandling: true,
		Flags:                  globalFlags(),
		Metadata:               map[string]any{metadataKey: cfg},
		Writer:                 cfg.Stdout,
		ErrWriter:              cfg.Stderr,
		Before: func(c *cli.Context) error {
			return configFrom(c).applyGlobalFlags(c)
		},
		After: func(c *cli.Context) error {
			configFrom(c).close()
			return nil
		},
		Commands: commands(),
		// Errors are printed once, by run.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	return app
}

func commands() []*cli.Command {
	return []*cli.Command{
		endpointsCommand(),
		versionCommand(),
		infoCommand(),
		runtimeConfigCommand(),
		runpCommand(),
		runCommand(),
		createCommand(),
		startCommand(),
		stopCommand(),
		rmCommand(),
		psCommand(),
		podsCommand(),
		inspectCommand(),
		inspectpCommand(),
		inspectiCommand(),
		imagesCommand(),
		pullCommand(),
		rmiCommand(),
		imagefsinfoCommand(),
		logsCommand(),
		execCommand(),
		attachCommand(),
		portForwardCommand(),
		statsCommand(),
		statspCommand(),
		updateCommand(),
		eventsCommand(),
		stoppCommand(),
		rmpCommand(),
		configCommand(),
		completionCommand(),
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// out and errOut are the command's writers.
func out(c *cli.Context) io.Writer    { return configFrom(c).Stdout }
func errOut(c *cli.Context) io.Writer { return configFrom(c).Stderr }
