package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/criclient"
)

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a new container",
		ArgsUsage: "POD container-config.[json|yaml] pod-config.[json|yaml]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-pull", Usage: "do not pull the image (overrides pull-image-on-create in the config file)"},
			&cli.BoolFlag{Name: "with-pull", Usage: "pull the image before creating the container"},
			&cli.StringFlag{Name: "creds", Usage: "registry credentials for the pull, USERNAME[:PASSWORD]"},
			&cli.StringFlag{Name: "auth", Usage: "registry credentials for the pull, base64 of USERNAME:PASSWORD"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 3 {
				return fmt.Errorf("create: want POD-ID CONTAINER-CONFIG POD-CONFIG")
			}
			ctr, err := criclient.LoadContainerConfig(c.Args().Get(1))
			if err != nil {
				return err
			}
			pod, err := criclient.LoadPodConfig(c.Args().Get(2))
			if err != nil {
				return err
			}
			auth, err := criclient.ParseAuth(c.String("creds"), c.String("auth"))
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			pull := configFrom(c).FileConfig.PullImageOnCreate
			if c.Bool("with-pull") {
				pull = true
			}
			if c.Bool("no-pull") {
				pull = false
			}
			id, err := cl.CreateContainer(c.Context, criclient.CreateOptions{
				PodID: c.Args().First(), Container: ctr, Pod: pod, Pull: pull, Auth: auth,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), id)
			return nil
		},
	}
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start one or more created containers",
		ArgsUsage: "CONTAINER-ID [CONTAINER-ID...]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "want at least one container ID"); err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return applyEach(c, c.Args().Slice(), "%s", func(id string) error { return cl.StartContainer(c.Context, id) })
		},
	}
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:                   "stop",
		Usage:                  "stop one or more running containers",
		ArgsUsage:              "CONTAINER-ID [CONTAINER-ID...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "timeout", Aliases: []string{"t"}, Usage: "seconds to wait to kill the container after a graceful stop is requested"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "stop all running containers"},
		},
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if !c.Bool("all") && len(ids) == 0 {
				return fmt.Errorf("stop: want at least one container ID, or -a")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			if c.Bool("all") {
				ctrs, err := cl.ListContainers(c.Context, criclient.ContainerFilter{State: "running"})
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, ctr := range ctrs {
					ids = append(ids, ctr.GetId())
				}
				if len(ids) == 0 {
					fmt.Fprintln(out(c), "No running containers found.")
					return nil
				}
			}
			grace := time.Duration(c.Int64("timeout")) * time.Second
			return applyEach(c, ids, "%s", func(id string) error { return cl.StopContainer(c.Context, id, grace) })
		},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:                   "rm",
		Usage:                  "remove one or more containers",
		ArgsUsage:              "CONTAINER-ID [CONTAINER-ID...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force removal of the container, disregarding if running"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all containers"},
		},
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if !c.Bool("all") && len(ids) == 0 {
				return fmt.Errorf("rm: want at least one container ID, or -a")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			if c.Bool("all") {
				ctrs, err := cl.ListContainers(c.Context, criclient.ContainerFilter{All: true})
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, ctr := range ctrs {
					ids = append(ids, ctr.GetId())
				}
			}
			return applyEach(c, ids, "%s", func(id string) error { return cl.RemoveContainer(c.Context, id, c.Bool("force")) })
		},
	}
}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:                   "ps",
		Usage:                  "list containers",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", Usage: "filter by container ID"},
			&cli.StringFlag{Name: "name", Usage: "filter by container name regular expression pattern"},
			&cli.StringFlag{Name: "pod", Aliases: []string{"p"}, Usage: "filter by pod ID"},
			&cli.StringFlag{Name: "image", Usage: "filter by container image"},
			&cli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "filter by container state (created, running, exited, unknown)"},
			&cli.StringSliceFlag{Name: "label", Usage: "filter by key=value label"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display container IDs"},
			outputFlag("json, yaml, table, go-template"), templateFlag(),
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the most recently created container (includes all states)"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Usage: "show the n most recently created containers (includes all states)"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "show output without truncating the ID"},
			&cli.StringFlag{Name: "namespace", Usage: "filter by pod namespace regular expression pattern"},
			verboseFlag(),
			&cli.BoolFlag{Name: "resolve-image-path", Aliases: []string{"r"}, Usage: "show the image path instead of the image ID"},
		},
		Action: func(c *cli.Context) error {
			lo, err := listOutput(c)
			if err != nil {
				return err
			}
			labels, err := criclient.ParseLabels(c.StringSlice("label"))
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			ctrs, err := cl.ListContainers(c.Context, criclient.ContainerFilter{
				ID: c.String("id"), PodID: c.String("pod"), Name: c.String("name"), Image: c.String("image"),
				State: c.String("state"), All: c.Bool("all"), Labels: labels, Latest: c.Bool("latest"),
				Last: c.Int("last"), Namespace: c.String("namespace"),
			})
			if err != nil {
				return err
			}
			if c.Bool("resolve-image-path") {
				lo.ImageName = func(image string) string { return cl.RepoImage(c.Context, image) }
			}
			return criclient.WriteContainers(out(c), ctrs, lo)
		},
	}
}

func inspectCommand() *cli.Command {
	return statusCommand("inspect", "display the status of one or more containers", "CONTAINER-ID", "container ID",
		func(c *cli.Context, cl *criclient.Client, id string, verbose bool) (criclient.StatusData, error) {
			r, err := cl.ContainerStatus(c.Context, id, verbose)
			if err != nil {
				return criclient.StatusData{}, err
			}
			return criclient.ContainerStatusData(r), nil
		})
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:                   "logs",
		Usage:                  "fetch the logs of a container",
		ArgsUsage:              "CONTAINER-ID",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow log output"},
			&cli.BoolFlag{Name: "previous", Aliases: []string{"p"}, Usage: "print the logs of the previous instance of the container"},
			&cli.StringFlag{Name: "since", Usage: "show logs since this timestamp (RFC3339) or relative duration (e.g. 42m)"},
			&cli.Int64Flag{Name: "tail", Value: -1, Usage: "number of lines to show from the end of the logs (-1: all)"},
			&cli.Int64Flag{Name: "limit-bytes", Value: -1, Usage: "maximum bytes of logs to return (-1: no limit)"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
			&cli.BoolFlag{Name: "reopen", Aliases: []string{"r"}, Usage: "reopen the container log first"},
			&cli.StringFlag{Name: "stream", Aliases: []string{"s"}, Usage: "show only this stream (stdout or stderr); default both"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("logs: want exactly one container ID")
			}
			stdout, stderr := out(c), errOut(c)
			switch c.String("stream") {
			case "":
			case "stdout":
				stderr = io.Discard
			case "stderr":
				stdout = io.Discard
			default:
				return fmt.Errorf("invalid --stream %q: use stdout or stderr", c.String("stream"))
			}
			if c.IsSet("tail") && c.IsSet("stream") {
				return fmt.Errorf("--tail and --stream are mutually exclusive")
			}
			since, err := criclient.ParseSince(c.String("since"), time.Now())
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return cl.Logs(c.Context, c.Args().First(), criclient.LogsOptions{
				Follow: c.Bool("follow"), Tail: c.Int64("tail"), Timestamps: c.Bool("timestamps"),
				Since: since, LimitBytes: c.Int64("limit-bytes"), Previous: c.Bool("previous"), Reopen: c.Bool("reopen"),
			}, stdout, stderr)
		},
	}
}

func transportFlag() cli.Flag {
	return &cli.StringFlag{Name: "transport", Aliases: []string{"r"}, Value: "spdy", Usage: "streaming transport: spdy or websocket"}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:                   "exec",
		Usage:                  "run a command in a running container (or in every container a filter selects)",
		ArgsUsage:              "CONTAINER-ID COMMAND [ARG...]  |  --name/--pod/... COMMAND [ARG...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "sync", Aliases: []string{"s"}, Usage: "run the command synchronously"},
			&cli.Int64Flag{Name: "timeout", Usage: "timeout in seconds for --sync"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			transportFlag(),
			&cli.StringFlag{Name: "name", Usage: "exec in all containers whose name matches this regular expression"},
			&cli.StringFlag{Name: "pod", Aliases: []string{"p"}, Usage: "exec in all containers of this pod"},
			&cli.StringFlag{Name: "image", Usage: "exec in all containers of this image"},
			&cli.StringFlag{Name: "state", Usage: "exec in all containers in this state"},
			&cli.StringSliceFlag{Name: "label", Usage: "exec in all containers with this key=value label"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "exec in the most recently created container"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Usage: "exec in the n most recently created containers"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not print the container ID when several are selected"},
			&cli.BoolFlag{Name: "ignore-errors", Aliases: []string{"e"}, Usage: "ignore errors of the command"},
			&cli.BoolFlag{Name: "parallel", Aliases: []string{"x"}, Usage: "run in all selected containers in parallel"},
		},
		Action: func(c *cli.Context) error {
			filtered := false
			for _, f := range []string{"name", "pod", "image", "state", "label", "latest", "last"} {
				filtered = filtered || c.IsSet(f)
			}
			var ids, cmd []string
			if filtered {
				cmd = c.Args().Slice()
				if len(cmd) == 0 {
					return fmt.Errorf("exec: want a command")
				}
			} else {
				if c.NArg() < 2 {
					return fmt.Errorf("exec: want CONTAINER-ID and a command")
				}
				ids, cmd = []string{c.Args().First()}, c.Args().Tail()
			}
			labels, err := criclient.ParseLabels(c.StringSlice("label"))
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			if filtered {
				ctrs, err := cl.ListContainers(c.Context, criclient.ContainerFilter{
					PodID: c.String("pod"), Name: c.String("name"), Image: c.String("image"), State: c.String("state"),
					Labels: labels, Latest: c.Bool("latest"), Last: c.Int("last"),
				})
				if err != nil {
					return err
				}
				for _, ctr := range ctrs {
					ids = append(ids, ctr.GetId())
				}
				if len(ids) == 0 {
					return fmt.Errorf("exec: no container matches the filters")
				}
			}
			return execIn(c, cl, ids, cmd, filtered && !c.Bool("quiet") && !c.Bool("parallel"))
		},
	}
}

// execIn runs cmd in each container, one after another or in parallel;
// the first failure (or non-zero exit) decides the exit status unless
// --ignore-errors.
func execIn(c *cli.Context, cl *criclient.Client, ids, cmd []string, header bool) error {
	cfg := configFrom(c)
	stdout, stderr := &lockedWriter{w: cfg.Stdout}, &lockedWriter{w: cfg.Stderr}
	one := func(id string) error {
		if header {
			fmt.Fprintln(stdout, id+":")
		}
		if c.Bool("sync") {
			r, err := cl.ExecSync(c.Context, id, cmd, time.Duration(c.Int64("timeout"))*time.Second)
			if err != nil {
				return err
			}
			stdout.Write(r.Stdout)
			stderr.Write(r.Stderr)
			if r.ExitCode != 0 {
				return cli.Exit("", int(r.ExitCode))
			}
			return nil
		}
		o := streamOptions(c)
		o.Stdout, o.Stderr = stdout, stderr
		return cl.Exec(c.Context, id, cmd, o)
	}
	errs := make([]error, len(ids))
	if c.Bool("parallel") {
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { errs[i] = one(id) })
		}
		wg.Wait()
	} else {
		for i, id := range ids {
			errs[i] = one(id)
		}
	}
	if c.Bool("ignore-errors") {
		return nil
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lockedWriter serialises writes from parallel execs.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func streamOptions(c *cli.Context) criclient.StreamOptions {
	cfg := configFrom(c)
	o := criclient.StreamOptions{Stdout: cfg.Stdout, Stderr: cfg.Stderr, TTY: c.Bool("tty"), Transport: c.String("transport")}
	if c.Bool("interactive") || c.Bool("stdin") {
		o.Stdin = cfg.Stdin
		if o.Stdin == nil {
			o.Stdin = os.Stdin
		}
	}
	return o
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name:                   "attach",
		Usage:                  "attach to a running container",
		ArgsUsage:              "CONTAINER-ID",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "stdin is a TTY"},
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass stdin to the container"},
			transportFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("attach: want exactly one container ID")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return cl.Attach(c.Context, c.Args().First(), streamOptions(c))
		},
	}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a new container inside a new pod (runp, create and start)",
		ArgsUsage: "container-config.[json|yaml] pod-config.[json|yaml]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "runtime", Aliases: []string{"r"}, Usage: "runtime handler to use"},
			&cli.BoolFlag{Name: "no-pull", Usage: "do not pull the image (overrides disable-pull-on-run=false in the config file)"},
			&cli.BoolFlag{Name: "with-pull", Usage: "pull the image (overrides disable-pull-on-run=true in the config file)"},
			&cli.StringFlag{Name: "creds", Usage: "registry credentials for the pull, USERNAME[:PASSWORD]"},
			&cli.StringFlag{Name: "auth", Usage: "registry credentials for the pull, base64 of USERNAME:PASSWORD"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("run: want CONTAINER-CONFIG and POD-CONFIG")
			}
			ctr, err := criclient.LoadContainerConfig(c.Args().Get(0))
			if err != nil {
				return err
			}
			pod, err := criclient.LoadPodConfig(c.Args().Get(1))
			if err != nil {
				return err
			}
			auth, err := criclient.ParseAuth(c.String("creds"), c.String("auth"))
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			pull := !configFrom(c).FileConfig.DisablePullOnRun
			if c.Bool("with-pull") {
				pull = true
			}
			if c.Bool("no-pull") {
				pull = false
			}
			podID, err := cl.RunPod(c.Context, pod, c.String("runtime"))
			if err != nil {
				return err
			}
			id, err := cl.CreateContainer(c.Context, criclient.CreateOptions{PodID: podID, Container: ctr, Pod: pod, Pull: pull, Auth: auth})
			if err != nil {
				return fmt.Errorf("%w (pod %s was left running; remove it with rmp -f)", err, podID)
			}
			if err := cl.StartContainer(c.Context, id); err != nil {
				return err
			}
			fmt.Fprintln(out(c), id)
			return nil
		},
	}
}
