package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/criclient"
)

func runpCommand() *cli.Command {
	return &cli.Command{
		Name:      "runp",
		Usage:     "run a new pod",
		ArgsUsage: "pod-config.[json|yaml]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "runtime", Aliases: []string{"r"}, Usage: "runtime handler to use"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("runp: want exactly one argument, the pod config file")
			}
			pod, err := criclient.LoadPodConfig(c.Args().First())
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			id, err := cl.RunPod(c.Context, pod, c.String("runtime"))
			if err != nil {
				return err
			}
			fmt.Fprintln(out(c), id)
			return nil
		},
	}
}

func stoppCommand() *cli.Command {
	return &cli.Command{
		Name:      "stopp",
		Usage:     "stop one or more running pods",
		ArgsUsage: "POD-ID [POD-ID...]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "want at least one pod ID"); err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return applyEach(c, c.Args().Slice(), "Stopped sandbox %s", func(id string) error { return cl.StopPod(c.Context, id) })
		},
	}
}

func rmpCommand() *cli.Command {
	return &cli.Command{
		Name:                   "rmp",
		Usage:                  "remove one or more pods",
		ArgsUsage:              "POD-ID [POD-ID...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "force removal of the pod sandbox, disregarding if running"},
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all pods"},
		},
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if !c.Bool("all") && len(ids) == 0 {
				return fmt.Errorf("rmp: want at least one pod ID, or -a")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			if c.Bool("all") {
				pods, err := cl.ListPods(c.Context, criclient.PodFilter{})
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, p := range pods {
					ids = append(ids, p.GetId())
				}
			}
			return applyEach(c, ids, "Removed sandbox %s", func(id string) error { return cl.RemovePod(c.Context, id, c.Bool("force")) })
		},
	}
}

func podsCommand() *cli.Command {
	return &cli.Command{
		Name:                   "pods",
		Usage:                  "list pods",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", Usage: "filter by pod ID"},
			&cli.StringFlag{Name: "name", Usage: "filter by pod name regular expression pattern"},
			&cli.StringFlag{Name: "namespace", Usage: "filter by pod namespace regular expression pattern"},
			&cli.StringFlag{Name: "state", Aliases: []string{"s"}, Usage: "filter by pod state (ready, notready)"},
			&cli.StringSliceFlag{Name: "label", Usage: "filter by key=value label"},
			verboseFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "list only pod IDs"},
			outputFlag("json, yaml, table, go-template"), templateFlag(),
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the most recently created pod"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Usage: "show the n most recently created pods"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "show output without truncating the ID"},
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
			pods, err := cl.ListPods(c.Context, criclient.PodFilter{
				ID: c.String("id"), Name: c.String("name"), Namespace: c.String("namespace"),
				State: c.String("state"), Labels: labels, Latest: c.Bool("latest"), Last: c.Int("last"),
			})
			if err != nil {
				return err
			}
			return criclient.WritePods(out(c), pods, lo)
		},
	}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show verbose information"}
}

// listOutput reads -o, -q, --no-trunc and --template.
func listOutput(c *cli.Context) (criclient.ListOutput, error) {
	f, err := criclient.ParseFormat(c.String("output"), criclient.FormatTable, criclient.FormatJSON, criclient.FormatYAML, criclient.FormatTemplate)
	if err != nil {
		return criclient.ListOutput{}, err
	}
	if f == criclient.FormatTemplate && c.String("template") == "" {
		return criclient.ListOutput{}, fmt.Errorf("-o go-template needs --template")
	}
	return criclient.ListOutput{Format: f, Quiet: c.Bool("quiet"), Verbose: c.Bool("verbose"), NoTrunc: c.Bool("no-trunc"), Template: c.String("template")}, nil
}

func inspectpCommand() *cli.Command {
	return statusCommand("inspectp", "display the status of one or more pods", "POD-ID", "pod ID",
		func(c *cli.Context, cl *criclient.Client, id string, verbose bool) (criclient.StatusData, error) {
			r, err := cl.PodStatus(c.Context, id, verbose)
			if err != nil {
				return criclient.StatusData{}, err
			}
			return criclient.PodStatusData(r), nil
		})
}

// statusCommand builds inspect, inspectp and inspecti: the status of each
// argument, written as JSON, YAML or a template (crictl's -o and --template).
func statusCommand(name, usage, arg, what string, status func(c *cli.Context, cl *criclient.Client, id string, verbose bool) (criclient.StatusData, error)) *cli.Command {
	return &cli.Command{
		Name:                   name,
		Usage:                  usage,
		ArgsUsage:              arg + " [" + arg + "...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			outputFlag("json, yaml, go-template"), templateFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not show verbose information"},
		},
		Action: func(c *cli.Context) error {
			f, err := statusFormat(c)
			if err != nil {
				return err
			}
			if err := needArgs(c, 1, "want at least one "+what); err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			var items []criclient.StatusData
			for _, id := range c.Args().Slice() {
				item, err := status(c, cl, id, !c.Bool("quiet"))
				if err != nil {
					return err
				}
				items = append(items, item)
			}
			return criclient.WriteStatus(out(c), items, f, c.String("template"))
		},
	}
}

// statusFormat reads -o for inspect commands (default json).
func statusFormat(c *cli.Context) (criclient.Format, error) {
	f, err := criclient.ParseFormat(c.String("output"), criclient.FormatJSON, criclient.FormatYAML, criclient.FormatTemplate)
	if err == nil && f == criclient.FormatTemplate && c.String("template") == "" {
		err = fmt.Errorf("-o go-template needs --template")
	}
	return f, err
}
