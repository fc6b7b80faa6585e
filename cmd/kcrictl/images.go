package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/criclient"
)

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:                   "images",
		Aliases:                []string{"image", "img"},
		Usage:                  "list images",
		ArgsUsage:              "[REPOSITORY[:TAG]]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show image IDs"},
			verboseFlag(),
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter output: dangling=true|false, reference=REGEXP, before=IMAGE, since=IMAGE"},
			outputFlag("json, yaml, table, go-template"), templateFlag(),
			&cli.BoolFlag{Name: "digests", Usage: "show digests"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "show output without truncating the ID"},
			&cli.BoolFlag{Name: "pinned", Usage: "show whether the image is pinned or not"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return fmt.Errorf("images: at most one REPOSITORY[:TAG] argument")
			}
			lo, err := listOutput(c)
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			imgs, err := cl.ListImages(c.Context, c.Args().First())
			if err != nil {
				return err
			}
			if imgs, err = criclient.FilterImages(imgs, c.StringSlice("filter")); err != nil {
				return err
			}
			return criclient.WriteImages(out(c), imgs, criclient.ImageListOutput{ListOutput: lo, Digests: c.Bool("digests"), Pinned: c.Bool("pinned")})
		},
	}
}

func inspectiCommand() *cli.Command {
	return statusCommand("inspecti", "return the status of one or more images", "IMAGE-ID", "image",
		func(c *cli.Context, cl *criclient.Client, ref string, verbose bool) (criclient.StatusData, error) {
			r, err := cl.ImageStatus(c.Context, ref, verbose)
			if err != nil {
				return criclient.StatusData{}, err
			}
			if r.GetImage() == nil {
				return criclient.StatusData{}, fmt.Errorf("no such image %q present", ref)
			}
			return criclient.StatusData{Status: r.GetImage(), Info: r.GetInfo()}, nil
		})
}

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from a registry",
		ArgsUsage: "NAME[:TAG|@DIGEST]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "creds", Usage: "use USERNAME[:PASSWORD] for accessing the registry"},
			&cli.StringFlag{Name: "auth", Usage: "use AUTH_STRING (base64 of USERNAME:PASSWORD) for accessing the registry"},
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "use USERNAME for the registry; the password is read from the terminal (or one line of stdin)"},
			&cli.StringFlag{Name: "pod-config", Usage: "use FILENAME as the pod config for the pull"},
			&cli.StringSliceFlag{Name: "annotation", Aliases: []string{"a"}, Usage: "annotation key=value for the image spec"},
			&cli.DurationFlag{Name: "pull-timeout", Aliases: []string{"pt"}, Usage: "maximum time to wait for the pull (0: 4m)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("pull: want exactly one image name")
			}
			auth, err := pullAuth(c)
			if err != nil {
				return err
			}
			var pod *runtimeapi.PodSandboxConfig
			if p := c.String("pod-config"); p != "" {
				if pod, err = criclient.LoadPodConfig(p); err != nil {
					return err
				}
			}
			ann, err := criclient.ParseLabels(c.StringSlice("annotation"))
			if err != nil {
				return err
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			ref := c.Args().First()
			prog := newProgress(configFrom(c), ref)
			imageRef, err := cl.PullImage(c.Context, criclient.PullOptions{
				Image: ref, Auth: auth, Pod: pod, Annotations: ann, Timeout: c.Duration("pull-timeout"),
				Progress: prog.tick, Interval: prog.interval,
			})
			prog.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(out(c), "Image is up to date for %s\n", imageRef)
			return nil
		},
	}
}

// progress shows that a pull is still going: a ticking line on a terminal,
// a line every 10 s otherwise (CRI reports no byte counts).
type progress struct {
	cfg      *Config
	ref      string
	tty      bool
	interval time.Duration
	shown    bool
}

func newProgress(cfg *Config, ref string) *progress {
	p := &progress{cfg: cfg, ref: ref, interval: 10 * time.Second}
	if f, ok := cfg.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.interval = true, 250*time.Millisecond
	}
	return p
}

func (p *progress) tick(elapsed time.Duration) {
	p.shown = true
	if p.tty {
		fmt.Fprintf(p.cfg.Stderr, "\rPulling %s ... %s ", p.ref, elapsed.Round(time.Second/10))
		return
	}
	fmt.Fprintf(p.cfg.Stderr, "Still pulling %s (%s)\n", p.ref, elapsed.Round(time.Second))
}

func (p *progress) done() {
	if p.tty && p.shown {
		fmt.Fprint(p.cfg.Stderr, "\r\033[K")
	}
}

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:                   "rmi",
		Usage:                  "remove one or more images",
		ArgsUsage:              "IMAGE-ID [IMAGE-ID...]",
		UseShortOptionHandling: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all images"},
			&cli.BoolFlag{Name: "prune", Aliases: []string{"q"}, Usage: "remove all unused images"},
		},
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if len(ids) == 0 && !c.Bool("all") && !c.Bool("prune") {
				return fmt.Errorf("rmi: want at least one image, or -a / --prune")
			}
			cl, err := clientFrom(c)
			if err != nil {
				return err
			}
			switch {
			case c.Bool("all"):
				imgs, err := cl.ListImages(c.Context, "")
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, img := range imgs {
					if !img.GetPinned() {
						ids = append(ids, img.GetId())
					}
				}
			case c.Bool("prune"):
				if ids, err = cl.UnusedImages(c.Context); err != nil {
					return err
				}
			}
			return criclient.ForEach(ids, errOut(c), func(id string) error {
				names, err := cl.RemoveImage(c.Context, id)
				if err != nil {
					return err
				}
				for _, n := range names {
					fmt.Fprintf(out(c), "Deleted: %s\n", n)
				}
				return nil
			})
		},
	}
}

// pullAuth reads --creds, --auth or --username (asking for the password).
func pullAuth(c *cli.Context) (*runtimeapi.AuthConfig, error) {
	user := c.String("username")
	if user == "" {
		return criclient.ParseAuth(c.String("creds"), c.String("auth"))
	}
	if c.String("creds") != "" || c.String("auth") != "" {
		return nil, fmt.Errorf("--username cannot be combined with --creds or --auth")
	}
	cfg := configFrom(c)
	var pass string
	if f, ok := cfg.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cfg.Stderr, "Enter Password:")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cfg.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		pass = string(b)
	} else {
		line, err := bufio.NewReader(cfg.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return nil, fmt.Errorf("--username: no password on stdin")
		}
		pass = strings.TrimRight(line, "\r\n")
	}
	return &runtimeapi.AuthConfig{Username: user, Password: pass}, nil
}
