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

// createFlags are shared by run and create.
func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "container name, unique in the namespace"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE)"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside the container"},
		&cli.StringFlag{Name: "hostname", Usage: "container host name (default: the short ID)"},
		&cli.StringFlag{Name: "pull", Value: "missing", Usage: "pull the image: always, missing or never"},
		&cli.StringFlag{Name: "net", Aliases: []string{"network"}, Value: "bridge", Usage: "network: bridge, host or none"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "publish a port: [[hostIP:]hostPort:]containerPort[/tcp|udp]"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a container label (KEY=VALUE)"},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a new container",
		ArgsUsage: "IMAGE [COMMAND] [ARG...]",
		// Docker users type -it.
		UseShortOptionHandling: true,
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "rm", Usage: "remove the container when it exits"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background and print the container ID"},
		),
		Action: runAction,
	}
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name:                   "create",
		Usage:                  "create a container without starting it",
		ArgsUsage:              "IMAGE [COMMAND] [ARG...]",
		UseShortOptionHandling: true,
		Flags:                  createFlags(),
		Action: func(c *cli.Context) error {
			opts, err := createOptions(c)
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			opts.PullOptions = images.PullOptions{Progress: newProgressPrinter(c.App.ErrWriter).Update}
			container, err := s.containers.Create(s.ctx, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, container.ID())
			return nil
		},
	}
}

// createOptions turns the shared flags into options.
func createOptions(c *cli.Context) (containers.CreateOptions, error) {
	if c.NArg() < 1 {
		return containers.CreateOptions{}, fmt.Errorf("IMAGE is required")
	}
	networkMode, err := containers.ParseNetworkMode(c.String("net"))
	if err != nil {
		return containers.CreateOptions{}, err
	}
	var ports []containers.PortMapping
	for _, spec := range c.StringSlice("publish") {
		port, err := containers.ParsePortMapping(spec)
		if err != nil {
			return containers.CreateOptions{}, err
		}
		ports = append(ports, port)
	}
	pullPolicy, err := containers.ParsePullPolicy(c.String("pull"))
	if err != nil {
		return containers.CreateOptions{}, err
	}
	labels, err := parseKeyValues(c.StringSlice("label"), "--label")
	if err != nil {
		return containers.CreateOptions{}, err
	}
	return containers.CreateOptions{
		Image:      c.Args().First(),
		Args:       c.Args().Tail(),
		Name:       c.String("name"),
		Env:        c.StringSlice("env"),
		WorkingDir: c.String("workdir"),
		Hostname:   c.String("hostname"),
		TTY:        c.Bool("tty"),
		Labels:     labels,
		Pull:       pullPolicy,
		Network:    networkMode,
		Ports:      ports,
	}, nil
}

func runAction(c *cli.Context) error {
	createOpts, err := createOptions(c)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if c.Bool("detach") && c.Bool("rm") {
		return fmt.Errorf("run: --rm and --detach cannot be used together")
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	createOpts.PullOptions = images.PullOptions{Progress: newProgressPrinter(c.App.ErrWriter).Update}

	if c.Bool("detach") {
		container, err := s.containers.RunDetached(s.ctx, createOpts)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, container.ID())
		return nil
	}

	tty := createOpts.TTY
	opts := containers.RunOptions{
		CreateOptions: createOpts,
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		Remove:        c.Bool("rm"),
	}
	if tty {
		opts.Stderr = nil
	}
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
