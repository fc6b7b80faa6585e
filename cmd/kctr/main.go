// Command kctr runs containers and manages images straight on containerd,
// with Docker's habits: kctr pull, kctr images, kctr run --rm.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/crilog"
)

func main() {
	// The shim starts kctr itself to write a detached container's log.
	if crilog.IsWriterInvocation(os.Args) {
		os.Exit(crilog.RunWriter(os.Args))
	}
	// run --init makes kctr the container's PID 1.
	if containers.IsInitInvocation(os.Args) {
		os.Exit(containers.RunInit(os.Args))
	}
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
	app := &cli.App{
		Name:                 "kctr",
		Usage:                "run containers and manage images on containerd, the Docker way",
		Version:              version,
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Commands: []*cli.Command{
			pullCommand(),
			imagesCommand(),
			runCommand(),
			createCommand(),
			startCommand(),
			stopCommand(),
			restartCommand(),
			killCommand(),
			rmCommand(),
			waitCommand(),
			psCommand(),
			logsCommand(),
			execCommand(),
			inspectCommand(),
			portCommand(),
			topCommand(),
			completionCommand(),
		},
	}
	app.Commands = append(app.Commands, imageCommands()...)
	app.Commands = append(app.Commands, namespaceCommand())
	app.Commands = append(app.Commands, loginCommands()...)
	app.Commands = append(app.Commands, systemCommands()...)
	app.Before = applyConfig
	app.OnUsageError = usageError
	setUsageError(app.Commands)
	return app
}

// usageError makes a misused flag one line on stderr, like any other error,
// instead of a help page on stdout.
func usageError(c *cli.Context, err error, _ bool) error {
	var words []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			words = append([]string{ctx.Command.Name}, words...)
		}
	}
	return fmt.Errorf("%w (see %s)", err, strings.Join(append(append([]string{"kctr"}, words...), "--help"), " "))
}

func setUsageError(commands []*cli.Command) {
	for _, cmd := range commands {
		cmd.OnUsageError = usageError
		setUsageError(cmd.Subcommands)
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
