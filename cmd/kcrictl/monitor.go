package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/criclient"
)

func statsCommand() *cli.Command {
	return &cli.Command{
		Name:                   "stats",
		Usage:                  "list container resource usage statistics",
		ArgsUsage:              "[ID]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
			&cli.StringFlag{Name: "id", Usage: "filter by container ID"},
			&cli.StringFlag{Name: "pod", Aliases: []string{"p"}, Usage: "filter by pod ID"},
			&cli.StringSliceFlag{Name: "label", Usage: "filter by key=value label"},
			outputFlag("json, yaml, table, go-template"), templateFlag(),
			&cli.IntFlag{Name: "seconds", Aliases: []string{"s"}, Value: 1, Usage: "sample duration for CPU usage in seconds"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "watch usage"},
		},
		Action: func(c *cli.Context) error {
			lo, labels, err := statsArgs(c)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			id := c.String("id")
			if id == "" {
				id = c.Args().First()
			}
			f := criclient.StatsFilter{ID: id, PodID: c.String("pod"), Labels: labels}
			if lo.Format != criclient.FormatTable {
				s, err := cl.ContainerStats(c.Context, f)
				if err != nil {
					return err
				}
				return criclient.WriteMessage(out(c), &runtimeapi.ListContainerStatsResponse{Stats: s}, lo.Format, lo.Template)
			}
			return sampleLoop(c, func() error {
				old, err := cl.ContainerStats(c.Context, f)
				if err != nil {
					return err
				}
				if err := sleepCtx(c, time.Duration(c.Int("seconds"))*time.Second); err != nil {
					return err
				}
				cur, err := cl.ContainerStats(c.Context, f)
				if err != nil {
					return err
				}
				return criclient.WriteContainerStats(out(c), old, cur, c.Bool("all"))
			})
		},
	}
}

func statspCommand() *cli.Command {
	return &cli.Command{
		Name:                   "statsp",
		Usage:                  "list pod statistics",
		ArgsUsage:              "[ID]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", Usage: "filter by pod ID"},
			&cli.StringSliceFlag{Name: "label", Usage: "filter by key=value label"},
			outputFlag("json, yaml, table, go-template"), templateFlag(),
			&cli.IntFlag{Name: "seconds", Aliases: []string{"s"}, Value: 1, Usage: "sample duration for CPU usage in seconds"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "watch usage"},
		},
		Action: func(c *cli.Context) error {
			lo, labels, err := statsArgs(c)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			id := c.String("id")
			if id == "" {
				id = c.Args().First()
			}
			f := criclient.StatsFilter{ID: id, Labels: labels}
			if lo.Format != criclient.FormatTable {
				s, err := cl.PodStats(c.Context, f)
				if err != nil {
					return err
				}
				return criclient.WriteMessage(out(c), &runtimeapi.ListPodSandboxStatsResponse{Stats: s}, lo.Format, lo.Template)
			}
			return sampleLoop(c, func() error {
				old, err := cl.PodStats(c.Context, f)
				if err != nil {
					return err
				}
				if err := sleepCtx(c, time.Duration(c.Int("seconds"))*time.Second); err != nil {
					return err
				}
				cur, err := cl.PodStats(c.Context, f)
				if err != nil {
					return err
				}
				return criclient.WritePodStats(out(c), old, cur)
			})
		},
	}
}

func statsArgs(c *cli.Context) (criclient.ListOutput, map[string]string, error) {
	lo, err := listOutput(c)
	if err != nil {
		return lo, nil, err
	}
	if c.Int("seconds") < 1 {
		return lo, nil, fmt.Errorf("--seconds must be at least 1")
	}
	labels, err := criclient.ParseLabels(c.StringSlice("label"))
	return lo, labels, err
}

// sampleLoop runs one table, or repeats it with a cleared screen for --watch.
func sampleLoop(c *cli.Context, table func() error) error {
	if !c.Bool("watch") {
		return table()
	}
	for c.Context.Err() == nil {
		fmt.Fprint(out(c), "\033[2J\033[H")
		if err := table(); err != nil {
			if c.Context.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

func sleepCtx(c *cli.Context, d time.Duration) error {
	select {
	case <-c.Context.Done():
		return c.Context.Err()
	case <-time.After(d):
		return nil
	}
}

func updateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "update one or more running containers",
		ArgsUsage: "CONTAINER-ID [CONTAINER-ID...]",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "cpu-period", Usage: "CPU CFS period to be used for hardcapping (in usecs)"},
			&cli.Int64Flag{Name: "cpu-quota", Usage: "CPU CFS hardcap limit (in usecs)"},
			&cli.Int64Flag{Name: "cpu-share", Usage: "CPU shares (relative weight vs. other containers)"},
			&cli.Int64Flag{Name: "memory", Usage: "memory limit (in bytes)"},
			&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPU(s) to use"},
			&cli.StringFlag{Name: "cpuset-mems", Usage: "memory node(s) to use"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "want at least one container ID"); err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			o := criclient.UpdateOptions{
				CPUPeriod: c.Int64("cpu-period"), CPUQuota: c.Int64("cpu-quota"), CPUShares: c.Int64("cpu-share"),
				Memory: c.Int64("memory"), CPUSetCPUs: c.String("cpuset-cpus"), CPUSetMems: c.String("cpuset-mems"),
			}
			return applyEach(c, c.Args().Slice(), "%s", func(id string) error { return cl.UpdateContainer(c.Context, id, o) })
		},
	}
}

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:    "events",
		Aliases: []string{"event"},
		Usage:   "stream the events of containers",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "json", Usage: "output format, one of: json, yaml, go-template"},
			templateFlag(),
		},
		Action: func(c *cli.Context) error {
			f, err := statusFormat(c)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return cl.Events(c.Context, func(ev *runtimeapi.ContainerEventResponse) error {
				return criclient.WriteMessage(out(c), ev, f, c.String("template"))
			})
		},
	}
}

func portForwardCommand() *cli.Command {
	return &cli.Command{
		Name:      "port-forward",
		Usage:     "forward local ports to a pod",
		ArgsUsage: "POD-ID [LOCAL_PORT:]REMOTE_PORT [...]",
		Flags:     []cli.Flag{transportFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return fmt.Errorf("port-forward: want POD-ID and at least one [LOCAL_PORT:]REMOTE_PORT")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			return cl.PortForward(c.Context, c.Args().First(), c.Args().Tail(), c.String("transport"), nil, out(c), errOut(c))
		},
	}
}
