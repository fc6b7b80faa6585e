package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/criclient"
	"github.com/kctr/kctr/endpoints"
)

func outputFlag(formats string) *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output format, one of: " + formats}
}

func templateFlag() cli.Flag {
	return &cli.StringFlag{Name: "template", Usage: "go-template used with -o go-template"}
}

func endpointsCommand() *cli.Command {
	return &cli.Command{
		Name:  "endpoints",
		Usage: "show every candidate endpoint, whether it answered and which one is used (exit 1 if none answers)",
		Flags: []cli.Flag{outputFlag("table, json")},
		Action: func(c *cli.Context) error {
			f, err := criclient.ParseFormat(c.String("output"), criclient.FormatTable, criclient.FormatJSON)
			if err != nil {
				return err
			}
			d := endpoints.Diagnose(c.Context, configFrom(c).Endpoints)
			if f == criclient.FormatJSON {
				err = d.WriteJSON(out(c))
			} else {
				for _, w := range d.Warnings {
					fmt.Fprintf(errOut(c), "WARN %s\n", w)
				}
				err = d.WriteTable(out(c))
			}
			if err != nil {
				return err
			}
			switch {
			case d.Err != "":
				return cli.Exit(d.Err, 2)
			case d.Chosen == "":
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "display runtime version information",
		Action: func(c *cli.Context) error {
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			v, err := cl.Version(c.Context)
			if err != nil {
				return err
			}
			criclient.WriteVersion(out(c), v)
			return nil
		},
	}
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "display information of the container runtime",
		Flags: []cli.Flag{outputFlag("json, yaml, go-template"), templateFlag(),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not show verbose information"}},
		Action: func(c *cli.Context) error {
			f, err := criclient.ParseFormat(c.String("output"), criclient.FormatJSON, criclient.FormatYAML, criclient.FormatTemplate)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			sd, err := cl.Info(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("quiet") {
				sd.Info, sd.Extra = nil, nil
			}
			return criclient.WriteStatus(out(c), []criclient.StatusData{sd}, f, c.String("template"))
		},
	}
}

func runtimeConfigCommand() *cli.Command {
	return &cli.Command{
		Name:  "runtime-config",
		Usage: "retrieve the container runtime configuration",
		Action: func(c *cli.Context) error {
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			r, err := cl.RuntimeConfig(c.Context)
			if err != nil {
				return err
			}
			criclient.WriteRuntimeConfig(out(c), r)
			return nil
		},
	}
}

func imagefsinfoCommand() *cli.Command {
	return &cli.Command{
		Name:  "imagefsinfo",
		Usage: "return image filesystem info",
		Flags: []cli.Flag{outputFlag("json, yaml, go-template"), templateFlag()},
		Action: func(c *cli.Context) error {
			f, err := criclient.ParseFormat(c.String("output"), criclient.FormatJSON, criclient.FormatYAML, criclient.FormatTemplate)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			r, err := cl.ImageFsInfo(c.Context)
			if err != nil {
				return err
			}
			return criclient.WriteStatus(out(c), []criclient.StatusData{{Status: r}}, f, c.String("template"))
		},
	}
}
