package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/ctrnamespaces"
)

func namespaceCommand() *cli.Command {
	return &cli.Command{
		Name:    "namespace",
		Aliases: []string{"ns"},
		Usage:   "manage containerd namespaces",
		Subcommands: []*cli.Command{
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "list namespaces",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the names"},
				},
				Action: namespaceList,
			},
			{
				Name:      "create",
				Usage:     "create a namespace",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a label (KEY=VALUE)"},
				},
				Action: namespaceCreate,
			},
			{
				Name:      "update",
				Usage:     "set labels of a namespace (KEY= removes one)",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "set a label (KEY=VALUE)"},
				},
				Action: namespaceUpdate,
			},
			{
				Name:      "inspect",
				Usage:     "show namespaces as JSON",
				ArgsUsage: "NAME [NAME...]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template applied to each namespace"},
				},
				Action: namespaceInspect,
			},
			{
				Name:      "rm",
				Aliases:   []string{"remove"},
				Usage:     "remove empty namespaces",
				ArgsUsage: "NAME [NAME...]",
				Action:    namespaceRemove,
			},
		},
	}
}

func namespaceList(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("namespace ls: unexpected arguments %q", c.Args().Slice())
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := ctrnamespaces.NewManager(s.client).List(s.ctx)
	if err != nil {
		return err
	}
	if c.Bool("quiet") {
		for _, ns := range list {
			fmt.Fprintln(c.App.Writer, ns.Name)
		}
		return nil
	}
	w := tabwriter.NewWriter(c.App.Writer, 4, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tLABELS")
	for _, ns := range list {
		fmt.Fprintf(w, "%s\t%s\n", ns.Name, namespaceLabels(ns.Labels))
	}
	return w.Flush()
}

// namespaceLabels prints labels as k=v,k2=v2 sorted by key.
func namespaceLabels(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func namespaceCreate(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("namespace create: want exactly one NAME, got %d arguments", c.NArg())
	}
	labels, err := parseKeyValues(c.StringSlice("label"), "--label")
	if err != nil {
		return fmt.Errorf("namespace create: %w", err)
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	return ctrnamespaces.NewManager(s.client).Create(s.ctx, c.Args().First(), labels)
}

func namespaceUpdate(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("namespace update: want exactly one NAME, got %d arguments", c.NArg())
	}
	labels, err := parseKeyValues(c.StringSlice("label"), "--label")
	if err != nil {
		return fmt.Errorf("namespace update: %w", err)
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	return ctrnamespaces.NewManager(s.client).SetLabels(s.ctx, c.Args().First(), labels)
}

func namespaceInspect(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("namespace inspect: NAME is required")
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	m := ctrnamespaces.NewManager(s.client)
	var out []ctrnamespaces.Namespace
	var failures []error
	for _, name := range c.Args().Slice() {
		ns, err := m.Get(s.ctx, name)
		if err != nil {
			failures = append(failures, fmt.Errorf("namespace inspect: %w", err))
			continue
		}
		out = append(out, ns)
	}
	if err := printObjects(c.App.Writer, out, c.String("format")); err != nil {
		return err
	}
	return reportEach(c, failures)
}

func namespaceRemove(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("namespace rm: NAME is required")
	}
	s, err := newSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	m := ctrnamespaces.NewManager(s.client)
	var failures []error
	for _, name := range c.Args().Slice() {
		if err := m.Remove(s.ctx, name); err != nil {
			failures = append(failures, err)
			continue
		}
		fmt.Fprintln(c.App.Writer, name)
	}
	return reportEach(c, failures)
}
