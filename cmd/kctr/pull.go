package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/images"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from a registry",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image name"},
			&cli.StringFlag{Name: "platform", Usage: "platform to pull, e.g. linux/arm64 (default: this machine's)"},
			&cli.BoolFlag{Name: "unpack", Value: true, Usage: "unpack the image into the snapshotter"},
			&cli.IntFlag{Name: "max-concurrent-downloads", Value: images.DefaultMaxConcurrentDownloads, Usage: "layers fetched at once"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("pull: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			opts := images.PullOptions{
				Platform:               c.String("platform"),
				SkipUnpack:             !c.Bool("unpack"),
				MaxConcurrentDownloads: c.Int("max-concurrent-downloads"),
			}
			var progress *progressPrinter
			if !c.Bool("quiet") {
				progress = newProgressPrinter(c.App.ErrWriter)
				opts.Progress = progress.Update
			}
			img, err := s.images.Pull(s.ctx, c.Args().First(), opts)
			if progress != nil {
				progress.Done()
			}
			if err != nil {
				return err
			}
			if !c.Bool("quiet") {
				fmt.Fprintf(c.App.Writer, "Digest: %s\n", img.Target.Digest)
			}
			fmt.Fprintln(c.App.Writer, img.Name)
			return nil
		},
	}
}
