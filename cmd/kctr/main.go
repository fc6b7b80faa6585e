// Command kctr runs containers and manages images straight on containerd,
// with Docker's habits: kctr pull, kctr images, kctr run --rm.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := newApp()
	if err := app.Run(os.Args); err != nil {
		var exitErr cli.ExitCoder
		if errors.As(err, &exitErr) {
			if msg := exitErr.Error(); msg != "" {
				fmt.Fprintf(os.Stderr, "kctr: %s\n", msg)
			}
			os.Exit(exitErr.ExitCode())
		}
		fmt.Fprintf(os.Stderr, "kctr: %v\n", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "kctr",
		Usage:                "run containers and manage images on containerd, the Docker way",
		Version:              version,
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Commands: []*cli.Command{
			pullCommand(),
			imagesCommand(),
			runCommand(),
		},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
