package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/images"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "list images",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only image IDs"},
			&cli.BoolFlag{Name: "digests", Usage: "show repo digests"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not shorten IDs"},
			&cli.StringFlag{Name: "format", Usage: "table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'", Value: "table"},
		},
		Action: func(c *cli.Context) error {
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := s.images.List(s.ctx)
			if err != nil {
				return err
			}
			rows := make([]imageRow, 0, len(list))
			for _, img := range list {
				rows = append(rows, newImageRow(img, c.Bool("no-trunc")))
			}
			return printImages(c.App.Writer, rows, imagesView{
				quiet: c.Bool("quiet"), digests: c.Bool("digests"), format: c.String("format"),
			})
		},
	}
}

// imageRow is one image as `kctr images` shows it; field names follow
// `docker images --format` so templates carry over.
type imageRow struct {
	Repository   string
	Tag          string
	ID           string
	Digest       string
	CreatedSince string
	CreatedAt    string
	Platform     string
	Size         string
	Name         string
}

func newImageRow(img *images.Image, noTrunc bool) imageRow {
	row := imageRow{Repository: img.Name, Tag: "<none>", Digest: img.Target.Digest.String(), Name: img.Name, Size: humanSize(img.Size)}
	if ref, err := images.ParseReference(img.Name); err == nil {
		row.Repository = strings.TrimSuffix(ref.Familiar(), ":"+ref.Tag)
		if ref.Tag != "" && ref.Digest == "" {
			row.Tag = ref.Tag
		} else if ref.Digest != "" {
			row.Repository = strings.Split(ref.Familiar(), "@")[0]
		}
	}
	row.ID = img.ID.Encoded()
	if !noTrunc && len(row.ID) > 12 {
		row.ID = row.ID[:12]
	}
	if img.Created != nil {
		row.CreatedAt = img.Created.Format(time.RFC3339)
		row.CreatedSince = humanSince(*img.Created)
	}
	if img.Platform.OS != "" {
		row.Platform = img.Platform.OS + "/" + img.Platform.Architecture
		if img.Platform.Variant != "" {
			row.Platform += "/" + img.Platform.Variant
		}
	}
	return row
}

type imagesView struct {
	quiet, digests bool
	format         string
}

func printImages(out io.Writer, rows []imageRow, view imagesView) error {
	switch {
	case view.quiet:
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.ID] {
				seen[r.ID] = true
				fmt.Fprintln(out, r.ID)
			}
		}
		return nil
	case view.format == "json":
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case view.format != "" && view.format != "table":
		tmpl, err := template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(view.format)
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
	header := "REPOSITORY\tTAG\t"
	if view.digests {
		header += "DIGEST\t"
	}
	fmt.Fprintln(w, header+"IMAGE ID\tCREATED\tPLATFORM\tSIZE")
	for _, r := range rows {
		line := r.Repository + "\t" + r.Tag + "\t"
		if view.digests {
			line += r.Digest + "\t"
		}
		fmt.Fprintln(w, line+r.ID+"\t"+r.CreatedSince+"\t"+r.Platform+"\t"+r.Size)
	}
	return w.Flush()
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func humanSince(t time.Time) string {
	d := time.Since(t)
	switch {
	case t.Unix() <= 0:
		return "N/A"
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%d months ago", int(d.Hours()/24/30))
	}
	return fmt.Sprintf("%d years ago", int(d.Hours()/24/365))
}
