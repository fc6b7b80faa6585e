package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/containerd/errdefs"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/kctr/kctr/containers"
)

// forEach runs fn for every argument and keeps going after a failure, the
// way `docker stop a b c` does; it fails if any failed.
func forEach(c *cli.Context, verb string, fn func(s *session, arg string) error) error {
	if c.NArg() == 0 {
		return fmt.Errorf("%s: at least one CONTAINER is required", verb)
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	var failed []error
	for _, arg := range c.Args().Slice() {
		if err := fn(s, arg); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "kctr: %v\n", err)
			failed = append(failed, err)
			continue
		}
	}
	if len(failed) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start created or stopped containers",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "attach", Aliases: []string{"a"}, Usage: "follow the output and exit with the container's status"}},
		Action: func(c *cli.Context) error {
			if c.Bool("attach") {
				if c.NArg() != 1 {
					return fmt.Errorf("start -a: exactly one CONTAINER")
				}
				s, err := newSession(c)
				if err != nil {
					return err
				}
				defer s.Close()
				if _, err := s.containers.Start(s.ctx, c.Args().First()); err != nil {
					return err
				}
				if err := s.containers.Logs(s.ctx, c.Args().First(), containers.LogsOptions{Follow: true, Tail: -1}, os.Stdout, os.Stderr); err != nil {
					return err
				}
				code, err := s.containers.Wait(s.ctx, c.Args().First())
				if err != nil {
					return err
				}
				if code != 0 {
					return cli.Exit("", code)
				}
				return nil
			}
			return forEach(c, "start", func(s *session, arg string) error {
				if _, err := s.containers.Start(s.ctx, arg); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, arg)
				return nil
			})
		},
	}
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop running containers: the stop signal, then SIGKILL after the timeout",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: int(containers.DefaultStopTimeout / time.Second), Usage: "seconds to wait before killing"}},
		Action: func(c *cli.Context) error {
			return forEach(c, "stop", func(s *session, arg string) error {
				if err := s.containers.Stop(s.ctx, arg, time.Duration(c.Int("time"))*time.Second); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, arg)
				return nil
			})
		},
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "stop and start containers",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: int(containers.DefaultStopTimeout / time.Second), Usage: "seconds to wait before killing"}},
		Action: func(c *cli.Context) error {
			return forEach(c, "restart", func(s *session, arg string) error {
				if err := s.containers.Stop(s.ctx, arg, time.Duration(c.Int("time"))*time.Second); err != nil {
					return err
				}
				if _, err := s.containers.Start(s.ctx, arg); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, arg)
				return nil
			})
		},
	}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "send a signal to running containers",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "KILL", Usage: "signal name or number"}},
		Action: func(c *cli.Context) error {
			return forEach(c, "kill", func(s *session, arg string) error {
				if err := s.containers.Kill(s.ctx, arg, c.String("signal")); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, arg)
				return nil
			})
		},
	}
}

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers with their snapshots and logs",
		ArgsUsage: "CONTAINER...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"}},
		Action: func(c *cli.Context) error {
			return forEach(c, "rm", func(s *session, arg string) error {
				if _, err := s.containers.Remove(s.ctx, arg, c.Bool("force")); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, arg)
				return nil
			})
		},
	}
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait for containers to exit and print their exit codes",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return forEach(c, "wait", func(s *session, arg string) error {
				code, err := s.containers.Wait(s.ctx, arg)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, code)
				return nil
			})
		},
	}
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a container's output (kept after it exits)",
		ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until the container stops"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "prefix each line with its time"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "number of last lines to show"},
			&cli.StringFlag{Name: "since", Usage: "only lines since a time (RFC 3339) or a duration ago (10m)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("logs: exactly one CONTAINER")
			}
			opts, err := logsOptions(c.String("tail"), c.String("since"), time.Now())
			if err != nil {
				return fmt.Errorf("logs: %w", err)
			}
			opts.Follow, opts.Timestamps = c.Bool("follow"), c.Bool("timestamps")
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			return s.containers.Logs(s.ctx, c.Args().First(), opts, os.Stdout, os.Stderr)
		},
	}
}

func logsOptions(tail, since string, now time.Time) (containers.LogsOptions, error) {
	opts := containers.LogsOptions{Tail: -1}
	if tail != "" && tail != "all" {
		var n int64
		if _, err := fmt.Sscan(tail, &n); err != nil || n < 0 {
			return opts, fmt.Errorf("--tail %q: want a number of lines or all", tail)
		}
		opts.Tail = n
	}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			opts.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, since); err == nil {
			opts.Since = t
		} else {
			return opts, fmt.Errorf("--since %q: want a duration like 10m or an RFC 3339 time", since)
		}
	}
	return opts, nil
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:                   "exec",
		Usage:                  "run a command in a running container",
		ArgsUsage:              "CONTAINER COMMAND [ARG...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE)"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user: name|uid[:group|gid]"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return fmt.Errorf("exec: CONTAINER and COMMAND are required")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			opts := containers.ExecOptions{
				Args:       c.Args().Tail(),
				Env:        c.StringSlice("env"),
				WorkingDir: c.String("workdir"),
				User:       c.String("user"),
				TTY:        c.Bool("tty"),
				Detach:     c.Bool("detach"),
				Stdout:     os.Stdout,
				Stderr:     os.Stderr,
			}
			if opts.TTY {
				opts.Stderr = nil
			}
			if c.Bool("interactive") {
				opts.Stdin = os.Stdin
			}
			if opts.TTY && term.IsTerminal(int(os.Stdin.Fd())) {
				state, err := term.MakeRaw(int(os.Stdin.Fd()))
				if err != nil {
					return fmt.Errorf("exec: set terminal raw: %w", err)
				}
				defer func() { _ = term.Restore(int(os.Stdin.Fd()), state) }()
				opts.Resize = watchTerminalSize(int(os.Stdin.Fd()))
			}
			signals := make(chan os.Signal, 8)
			signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
			defer signal.Stop(signals)
			opts.Signals = signals
			code, err := s.containers.Exec(s.ctx, c.Args().First(), opts)
			if err != nil {
				return err
			}
			if code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers, not only running ones"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not shorten IDs and commands"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: name=, label=KEY[=VALUE], status=, id=, ancestor="},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "table, json, or a Go template such as '{{.ID}} {{.Names}}'"},
		},
		Action: func(c *cli.Context) error {
			filters, err := parsePsFilters(c.StringSlice("filter"))
			if err != nil {
				return fmt.Errorf("ps: %w", err)
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.containers.List(s.ctx, c.Bool("all") || filters.wantsExited())
			if err != nil {
				return err
			}
			var rows []psRow
			for _, summary := range list {
				if filters.match(summary) {
					rows = append(rows, newPsRow(summary, c.Bool("no-trunc"), time.Now()))
				}
			}
			return printPs(c.App.Writer, rows, c.Bool("quiet"), c.String("format"))
		},
	}
}

// psRow is one container as `kctr ps` shows it; field names follow
// `docker ps --format`.
type psRow struct {
	ID        string
	Image     string
	Command   string
	CreatedAt string
	Status    string
	State     string
	Names     string
	Labels    string
}

func newPsRow(s containers.Summary, noTrunc bool, now time.Time) psRow {
	row := psRow{ID: s.ID, Image: s.Image, Command: s.Command, CreatedAt: s.CreatedAt.Format(time.RFC3339), State: s.State, Names: s.Name}
	if !noTrunc {
		row.ID = truncate(row.ID, 12)
		row.Command = truncate(row.Command, 20)
	}
	row.Command = fmt.Sprintf("%q", row.Command)
	switch s.State {
	case containers.StateRunning:
		row.Status = "Up " + humanDuration(now.Sub(s.CreatedAt))
	case containers.StatePaused:
		row.Status = "Up " + humanDuration(now.Sub(s.CreatedAt)) + " (Paused)"
	case containers.StateExited:
		row.Status = fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.ExitedAt)))
	case containers.StateCreated:
		row.Status = "Created"
	default:
		row.Status = "Unknown"
	}
	var labels []string
	for k, v := range s.Labels {
		labels = append(labels, k+"="+v)
	}
	row.Labels = strings.Join(labels, ",")
	return row
}

func printPs(out io.Writer, rows []psRow, quiet bool, format string) error {
	switch {
	case quiet:
		for _, r := range rows {
			fmt.Fprintln(out, r.ID)
		}
		return nil
	case format == "json":
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case format != "" && format != "table":
		tmpl, err := template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(format)
		if err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		for _, r := range rows {
			if err := tmpl.Execute(out, r); err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			fmt.Fprintln(out)
		}
		return nil
	}
	w := tabwriter.NewWriter(out, 4, 8, 3, ' ', 0)
	fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
	for _, r := range rows {
		created, _ := time.Parse(time.RFC3339, r.CreatedAt)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%s\t%s\n", r.ID, r.Image, r.Command, humanDuration(time.Since(created)), r.Status, r.Names)
	}
	return w.Flush()
}

// psFilters are `ps -f` conditions; all must hold.
type psFilters struct {
	names, ids, statuses, ancestors []string
	labels                          map[string]*string
}

func parsePsFilters(items []string) (psFilters, error) {
	f := psFilters{labels: map[string]*string{}}
	for _, item := range items {
		key, value, ok := strings.Cut(item, "=")
		if !ok || value == "" {
			return f, fmt.Errorf("filter %q: want KEY=VALUE", item)
		}
		switch key {
		case "name":
			f.names = append(f.names, value)
		case "id":
			f.ids = append(f.ids, value)
		case "status":
			f.statuses = append(f.statuses, value)
		case "ancestor":
			f.ancestors = append(f.ancestors, value)
		case "label":
			k, v, hasValue := strings.Cut(value, "=")
			if hasValue {
				f.labels[k] = &v
			} else {
				f.labels[k] = nil
			}
		default:
			return f, fmt.Errorf("filter %q: unknown key %q (want name, id, status, label or ancestor)", item, key)
		}
	}
	return f, nil
}

func (f psFilters) wantsExited() bool {
	for _, s := range f.statuses {
		if s != containers.StateRunning {
			return true
		}
	}
	return false
}

func (f psFilters) match(s containers.Summary) bool {
	anyOf := func(values []string, test func(string) bool) bool {
		if len(values) == 0 {
			return true
		}
		for _, v := range values {
			if test(v) {
				return true
			}
		}
		return false
	}
	if !anyOf(f.names, func(v string) bool { return strings.Contains(s.Name, v) }) ||
		!anyOf(f.ids, func(v string) bool { return strings.HasPrefix(s.ID, v) }) ||
		!anyOf(f.statuses, func(v string) bool { return s.State == v }) ||
		!anyOf(f.ancestors, func(v string) bool { return s.Image == v || strings.Contains(s.Image, "/"+v) }) {
		return false
	}
	for k, v := range f.labels {
		got, ok := s.Labels[k]
		if !ok || (v != nil && got != *v) {
			return false
		}
	}
	return true
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "print details of containers or images as JSON",
		ArgsUsage: "NAME|ID...",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template, e.g. '{{.State.Status}}'"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("inspect: at least one container or image is required")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			// Like Docker: a container of that name first, else an image.
			var objects []any
			var errs []error
			for _, arg := range c.Args().Slice() {
				d, err := s.containers.Inspect(s.ctx, arg)
				if err == nil {
					objects = append(objects, d)
					continue
				}
				if !errdefs.IsNotFound(err) {
					errs = append(errs, err)
					continue
				}
				img, imgErr := s.images.Inspect(s.ctx, arg)
				if imgErr != nil {
					errs = append(errs, fmt.Errorf("no such container or image: %s", arg))
					continue
				}
				objects = append(objects, newImageInspect(img))
			}
			if err := printObjects(c.App.Writer, objects, c.String("format")); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func portCommand() *cli.Command {
	return &cli.Command{
		Name:      "port",
		Usage:     "list a container's published ports",
		ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("port: exactly one CONTAINER")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			ports, err := s.containers.Ports(s.ctx, c.Args().First())
			if err != nil {
				return err
			}
			for _, p := range ports {
				fmt.Fprintln(c.App.Writer, p.String())
			}
			return nil
		},
	}
}

func topCommand() *cli.Command {
	return &cli.Command{
		Name:      "top",
		Usage:     "list the processes of a running container",
		ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("top: exactly one CONTAINER")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			procs, err := s.containers.Top(s.ctx, c.Args().First())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.App.Writer, 4, 8, 3, ' ', 0)
			fmt.Fprintln(w, "UID\tPID\tPPID\tSTIME\tTIME\tCMD")
			for _, p := range procs {
				cpu := p.CPUTime.Round(time.Second)
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%02d:%02d:%02d\t%s\n", p.UID, p.PID, p.PPID, p.Start.Format("15:04"),
					int(cpu.Hours()), int(cpu.Minutes())%60, int(cpu.Seconds())%60, p.Command)
			}
			return w.Flush()
		},
	}
}
