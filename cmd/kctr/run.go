package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/images"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a new container",
		ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		// Docker users type -it.
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "rm", Usage: "remove the container when it exits"},
			&cli.StringFlag{Name: "name", Usage: "container name, unique in the namespace"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE)"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
			&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image: always, missing or never"},
			&cli.StringFlag{Name: "net", Aliases: []string{"network"}, Value: "none", Usage: "network: none (bridge networking comes with the full CLI)"},
			&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a container label (KEY=VALUE)"},
		},
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() < 1 {
		return fmt.Errorf("run: IMAGE is required")
	}
	if !c.Bool("rm") {
		return fmt.Errorf("run: only --rm runs are supported so far (detached containers come with the full CLI)")
	}
	if net := c.String("net"); net != "none" {
		return fmt.Errorf("run: --net %q is not supported yet; use --net none", net)
	}
	pullPolicy, err := containers.ParsePullPolicy(c.String("pull"))
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	labels, err := parseKeyValues(c.StringSlice("label"), "--label")
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()

	tty := c.Bool("tty")
	opts := containers.RunOptions{
		CreateOptions: containers.CreateOptions{
			Image:      c.Args().First(),
			Args:       c.Args().Tail(),
			Name:       c.String("name"),
			Env:        c.StringSlice("env"),
			WorkingDir: c.String("workdir"),
			TTY:        tty,
			Labels:     labels,
			Pull:       pullPolicy,
		},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Remove: c.Bool("rm"),
	}
	if tty {
		opts.Stderr = nil
	}
	progress := newProgressPrinter(c.App.ErrWriter)
	opts.PullOptions = images.PullOptions{Progress: progress.Update}
	if c.Bool("interactive") {
		opts.Stdin = os.Stdin
	}
	if tty && term.IsTerminal(int(os.Stdin.Fd())) {
		state, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			return fmt.Errorf("run: set terminal raw: %w", err)
		}
		defer func() { _ = term.Restore(int(os.Stdin.Fd()), state) }()
		opts.Resize = watchTerminalSize(int(os.Stdin.Fd()))
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(signals)
	opts.Signals = signals

	result, err := s.containers.Run(s.ctx, opts)
	if err != nil {
		return err
	}
	if result.ExitCode != 0 {
		return cli.Exit("", result.ExitCode)
	}
	return nil
}

func parseKeyValues(items []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range items {
		key, value, _ := strings.Cut(item, "=")
		if key == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, item)
		}
		out[key] = value
	}
	return out, nil
}

// watchTerminalSize reports the terminal's size now and after every
// SIGWINCH, for the container's console to follow.
func watchTerminalSize(fd int) <-chan containers.ConsoleSize {
	sizes := make(chan containers.ConsoleSize, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	send := func() {
		width, height, err := term.GetSize(fd)
		if err != nil {
			return
		}
		select {
		case <-sizes:
		default:
		}
		sizes <- containers.ConsoleSize{Width: uint32(width), Height: uint32(height)}
	}
	send()
	go func() {
		for range winch {
			send()
		}
	}()
	return sizes
}
