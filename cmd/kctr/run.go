package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

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
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "bind mount HOST-PATH:CONTAINER-PATH[:ro]"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read environment variables from a file of KEY=VALUE lines"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user: name|uid[:group|gid]"},
		&cli.StringFlag{Name: "entrypoint", Usage: "replace the image's entrypoint"},
		&cli.Float64Flag{Name: "cpus", Usage: "number of CPUs (CFS quota)"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit, e.g. 512m or 1g"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
		&cli.BoolFlag{Name: "read-only", Usage: "mount the root filesystem read-only"},
		&cli.BoolFlag{Name: "privileged", Usage: "give the container every capability and device"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a Linux capability"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a Linux capability"},
		&cli.StringFlag{Name: "platform", Usage: "image platform, e.g. linux/amd64"},
		&cli.StringFlag{Name: "restart", Value: "no", Usage: "restart policy: no, always, unless-stopped, on-failure[:N]"},
		&cli.BoolFlag{Name: "init", Usage: "run an init as PID 1 that forwards signals and reaps zombies"},
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
			&cli.BoolFlag{Name: "dry-run", Usage: "print the equivalent Kubernetes Pod instead of running (see -o)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "yaml", Usage: "with --dry-run: yaml or json"},
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
	var mounts []containers.Mount
	for _, spec := range c.StringSlice("volume") {
		m, err := containers.ParseVolume(spec)
		if err != nil {
			return containers.CreateOptions{}, err
		}
		mounts = append(mounts, m)
	}
	env, err := readEnvFiles(c.StringSlice("env-file"))
	if err != nil {
		return containers.CreateOptions{}, err
	}
	memory, err := containers.ParseMemory(c.String("memory"))
	if err != nil {
		return containers.CreateOptions{}, err
	}
	restartPolicy, err := containers.ParseRestartPolicy(c.String("restart"))
	if err != nil {
		return containers.CreateOptions{}, err
	}
	var entrypoint []string
	if e := c.String("entrypoint"); e != "" {
		entrypoint = []string{e}
	}
	return containers.CreateOptions{
		Image:      c.Args().First(),
		Entrypoint: entrypoint,
		User:       c.String("user"),
		Mounts:     mounts,
		Resources:  containers.Resources{CPUs: c.Float64("cpus"), Memory: memory, PidsLimit: c.Int64("pids-limit")},
		Security: containers.SecurityOptions{
			Privileged: c.Bool("privileged"),
			ReadOnly:   c.Bool("read-only"),
			CapAdd:     c.StringSlice("cap-add"),
			CapDrop:    c.StringSlice("cap-drop"),
		},
		Platform:   c.String("platform"),
		Restart:    restartPolicy,
		Init:       c.Bool("init"),
		Args:       c.Args().Tail(),
		Name:       c.String("name"),
		Env:        append(env, c.StringSlice("env")...),
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
	if c.Bool("dry-run") {
		return printPodManifest(c, createOpts)
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

// readEnvFiles reads Docker-style env files: KEY=VALUE lines, # comments,
// and a bare KEY taking its value from kctr's own environment.
func readEnvFiles(paths []string) ([]string, error) {
	var env []string
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, _, hasValue := strings.Cut(line, "=")
			if key == "" || strings.ContainsAny(key, " \t") {
				return nil, fmt.Errorf("--env-file %s line %d: %q is not KEY=VALUE", path, i+1, line)
			}
			if !hasValue {
				value, ok := os.LookupEnv(key)
				if !ok {
					continue
				}
				line = key + "=" + value
			}
			env = append(env, line)
		}
	}
	return env, nil
}

// printPodManifest is `run --dry-run`: the Pod a kubelet (or kubelet-lite)
// would run for these flags. It needs no containerd.
func printPodManifest(c *cli.Context, opts containers.CreateOptions) error {
	pod, warnings, err := containers.PodManifest(opts)
	if err != nil {
		return fmt.Errorf("run --dry-run: %w", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(c.App.ErrWriter, "kctr: warning: %s\n", w)
	}
	var out []byte
	switch c.String("output") {
	case "yaml":
		out, err = yaml.Marshal(pod)
	case "json":
		out, err = json.MarshalIndent(pod, "", "  ")
		out = append(out, '\n')
	default:
		return fmt.Errorf("run --dry-run: -o %q: want yaml or json", c.String("output"))
	}
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(out)
	return err
}
