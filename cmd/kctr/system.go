package main

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/system"
)

// systemCommands are info, version and the system group (prune).
func systemCommands() []*cli.Command {
	return []*cli.Command{
		infoCommand(),
		versionCommand(),
		{
			Name:        "system",
			Usage:       "manage what kctr keeps in containerd",
			Subcommands: []*cli.Command{systemPruneCommand(), systemInfoCommand()},
		},
	}
}

func systemInfoCommand() *cli.Command {
	info := infoCommand()
	info.Name = "info"
	return info
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "show containerd's version, plugins and what kctr uses in it",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "json, or a Go template such as '{{.Server.Version}}'"},
		},
		Action: func(c *cli.Context) error {
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			info, err := system.GetInfo(s.ctx, s.client, system.InfoOptions{
				Address:     c.String("address"),
				Namespace:   c.String("namespace"),
				Snapshotter: c.String("snapshotter"),
			})
			if err != nil {
				return err
			}
			if format := c.String("format"); format != "" {
				return printInfoFormat(c.App.Writer, info, format)
			}
			printInfo(c.App.Writer, info)
			return nil
		},
	}
}

func printInfo(out io.Writer, info *system.Info) {
	w := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	fmt.Fprintln(w, "Server:")
	fmt.Fprintf(w, " Server Version:\t%s\n", info.Server.Version)
	fmt.Fprintf(w, " Revision:\t%s\n", info.Server.Revision)
	if info.Server.UUID != "" {
		fmt.Fprintf(w, " UUID:\t%s\n", info.Server.UUID)
	}
	fmt.Fprintf(w, " Address:\t%s\n", info.Address)
	fmt.Fprintf(w, " Namespace:\t%s\n", info.Namespace)
	fmt.Fprintf(w, " Snapshotter:\t%s (%s)\n", info.Snapshotter, info.SnapshotterStatus)
	fmt.Fprintf(w, " Plugins:\t%d (%d not loaded)\n", info.Plugins, info.PluginsFailed)
	fmt.Fprintf(w, " Cgroup Driver:\t%s\n", info.CgroupDriver)
	fmt.Fprintf(w, " Cgroup Version:\t%s\n", info.CgroupVersion)
	fmt.Fprintf(w, " Kernel Version:\t%s\n", info.Kernel)
	fmt.Fprintf(w, " OSType:\t%s\n", info.OS)
	fmt.Fprintf(w, " Architecture:\t%s\n", info.Architecture)
	fmt.Fprintf(w, " CPUs:\t%d\n", info.CPUs)
	fmt.Fprintf(w, " Total Memory:\t%s\n", humanSize(info.MemoryBytes))
	_ = w.Flush()
}

func printInfoFormat(out io.Writer, v any, format string) error {
	if format == "json" {
		s, err := toJSON(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, s)
		return err
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	if err := tmpl.Execute(out, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = fmt.Fprintln(out)
	return err
}

// versionInfo is `kctr version --format json`.
type versionInfo struct {
	Client struct {
		Version   string
		GoVersion string
		OS        string
		Arch      string
	}
	Server *system.ServerInfo `json:",omitempty"`
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "show kctr's and containerd's versions",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "json, or a Go template such as '{{.Server.Version}}'"},
		},
		Action: func(c *cli.Context) error {
			var v versionInfo
			v.Client.Version = version
			v.Client.GoVersion = runtime.Version()
			v.Client.OS, v.Client.Arch = runtime.GOOS, runtime.GOARCH
			var serverErr error
			s, err := newSession(c)
			if err == nil {
				defer s.Close()
				var server system.ServerInfo
				if server, serverErr = system.GetServerInfo(s.ctx, s.client); serverErr == nil {
					v.Server = &server
				}
			} else {
				serverErr = err
			}
			if format := c.String("format"); format != "" {
				if err := printInfoFormat(c.App.Writer, v, format); err != nil {
					return err
				}
				return serverErr
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 8, 1, ' ', 0)
			fmt.Fprintln(w, "Client:")
			fmt.Fprintf(w, " Version:\t%s\n", v.Client.Version)
			fmt.Fprintf(w, " Go version:\t%s\n", v.Client.GoVersion)
			fmt.Fprintf(w, " OS/Arch:\t%s/%s\n", v.Client.OS, v.Client.Arch)
			if v.Server != nil {
				fmt.Fprintln(w)
				fmt.Fprintln(w, "Server:")
				fmt.Fprintln(w, " containerd:")
				fmt.Fprintf(w, "  Version:\t%s\n", v.Server.Version)
				fmt.Fprintf(w, "  GitCommit:\t%s\n", v.Server.Revision)
			}
			_ = w.Flush()
			return serverErr
		},
	}
}

func systemPruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove stopped containers and unused images of the namespace",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every image no container uses, not just dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			what := []string{"all stopped containers (not those a CRI server made)"}
			if c.Bool("all") {
				what = append(what, "all images without at least one container using them")
			} else {
				what = append(what, "all dangling images")
			}
			return runPrune(c, "system prune", what, system.PruneOptions{AllImages: c.Bool("all")}, true)
		},
	}
}

func imagePruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "remove unused images of the namespace",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove every image no container uses, not just dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			what := []string{"all dangling images"}
			if c.Bool("all") {
				what = []string{"all images without at least one container using them"}
			}
			return runPrune(c, "image prune", what, system.PruneOptions{AllImages: c.Bool("all"), KeepContainers: true}, false)
		},
	}
}

// runPrune asks for confirmation (refusing without -f when it cannot ask),
// prunes and prints Docker's report.
func runPrune(c *cli.Context, command string, what []string, opts system.PruneOptions, showContainers bool) error {
	if c.NArg() != 0 {
		return fmt.Errorf("%s: unexpected arguments %q", command, c.Args().Slice())
	}
	if !c.Bool("force") {
		if !stdioIsTerminal(c.App.Reader) {
			return fmt.Errorf("%s: stdin is not a terminal to confirm on; use --force", command)
		}
		fmt.Fprintf(c.App.ErrWriter, "WARNING! This will remove from namespace %q:\n", c.String("namespace"))
		for _, w := range what {
			fmt.Fprintf(c.App.ErrWriter, "  - %s\n", w)
		}
		if !askYesNo(c.App.Reader, c.App.ErrWriter, "Are you sure you want to continue?") {
			return cli.Exit("", 1)
		}
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	opts.Snapshotter = c.String("snapshotter")
	report, err := system.Prune(s.ctx, s.client, s.containers, s.images, opts)
	if report != nil {
		printPruneReport(c.App.Writer, report, showContainers)
	}
	return err
}

func askYesNo(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

func printPruneReport(out io.Writer, r *system.PruneReport, showContainers bool) {
	if showContainers && len(r.Containers) > 0 {
		fmt.Fprintln(out, "Deleted Containers:")
		for _, id := range r.Containers {
			fmt.Fprintln(out, id)
		}
		fmt.Fprintln(out)
	}
	if len(r.Untagged)+len(r.Deleted) > 0 {
		fmt.Fprintln(out, "Deleted Images:")
		for _, name := range r.Untagged {
			fmt.Fprintf(out, "untagged: %s\n", familiarImageName(name))
		}
		for _, id := range r.Deleted {
			fmt.Fprintf(out, "deleted: %s\n", id)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(r.Reclaimed))
}
