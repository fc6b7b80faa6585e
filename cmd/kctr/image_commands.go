package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/kctr/kctr/images"
)

// imageCommands are the image verbs Docker has at the top level (push,
// tag, rmi, save, load) and the `image` group that also holds ls, pull and
// inspect.
func imageCommands() []*cli.Command {
	return []*cli.Command{
		pushCommand(),
		tagCommand(),
		rmiCommand(),
		saveCommand(),
		loadCommand(),
		imageCommand(),
	}
}

func imageCommand() *cli.Command {
	ls := imagesCommand()
	ls.Name, ls.Aliases = "ls", []string{"list"}
	rm := rmiCommand()
	rm.Name, rm.Aliases = "rm", []string{"remove"}
	prune := imagePruneCommand()
	return &cli.Command{
		Name:  "image",
		Usage: "manage images",
		Subcommands: []*cli.Command{
			ls, pullCommand(), pushCommand(), tagCommand(), rm,
			imageInspectCommand(), saveCommand(), loadCommand(), prune,
		},
	}
}

func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push an image to a registry",
		ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "platform", Usage: "platform to push from a multi-platform image, e.g. linux/arm64 (default: this machine's)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing on success"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("push: want exactly one IMAGE, got %d arguments", c.NArg())
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			name := c.Args().First()
			if err := s.images.Push(s.ctx, name, "", images.PushOptions{Platform: c.String("platform")}); err != nil {
				return err
			}
			if c.Bool("quiet") {
				return nil
			}
			img, err := s.images.Get(s.ctx, name)
			if err != nil {
				return err
			}
			printPushed(c.App.Writer, img)
			return nil
		},
	}
}

// printPushed prints what `docker push` prints around its progress: the
// repository, then "TAG: digest: DIGEST size: SIZE" for scripts to read.
func printPushed(w io.Writer, img *images.Image) {
	ref, err := images.ParseReference(img.Name)
	if err != nil {
		fmt.Fprintf(w, "%s: digest: %s size: %d\n", img.Name, img.Target.Digest, img.Target.Size)
		return
	}
	// A bare repository parses as REPO:latest.
	repo := strings.TrimSuffix(familiarImageName(ref.Repository()), ":latest")
	fmt.Fprintf(w, "The push refers to repository [%s]\n", repo)
	label := ref.Tag
	if label == "" {
		label = ref.Digest
	}
	fmt.Fprintf(w, "%s: digest: %s size: %d\n", label, img.Target.Digest, img.Target.Size)
}

func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give an image another name (TARGET moves to SOURCE's image if it exists)",
		ArgsUsage: "SOURCE TARGET",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("tag: want SOURCE and TARGET, got %d arguments", c.NArg())
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.images.Tag(s.ctx, c.Args().Get(0), c.Args().Get(1))
			return err
		},
	}
}

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "remove images",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove every name of an image ID, and images containers use"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("rmi: IMAGE is required")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			var failures []error
			for _, arg := range c.Args().Slice() {
				if err := removeImage(c, s, arg); err != nil {
					failures = append(failures, err)
				}
			}
			return reportEach(c, failures)
		},
	}
}

// removeImage removes one image and prints Docker's Untagged/Deleted lines.
func removeImage(c *cli.Context, s *session, nameOrID string) error {
	removal, err := s.images.RemoveImage(s.ctx, nameOrID, images.RemoveOptions{Force: c.Bool("force")})
	for _, name := range removal.Untagged {
		fmt.Fprintf(c.App.Writer, "Untagged: %s\n", familiarImageName(name))
	}
	if removal.Deleted != "" {
		fmt.Fprintf(c.App.Writer, "Deleted: %s\n", removal.Deleted)
	}
	return err
}

// reportEach returns the only error, or prints each of several on its
// own line and returns an exit status with nothing more to say.
func reportEach(c *cli.Context, errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	for _, err := range errs {
		fmt.Fprintf(c.App.ErrWriter, "kctr: %v\n", err)
	}
	return cli.Exit("", 1)
}

func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "write images to a tarball (loads with `kctr load` and `docker load`, and is an OCI layout)",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file instead of stdout"},
			&cli.StringFlag{Name: "format", Value: "docker-archive", Usage: "docker-archive (also an OCI layout) or oci (no Docker manifest.json)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("save: IMAGE is required")
			}
			opts, err := parseSaveFormat(c.String("format"))
			if err != nil {
				return err
			}
			output := c.String("output")
			if output == "" && stdioIsTerminal(c.App.Writer) {
				return fmt.Errorf("save: refusing to write a tarball to a terminal; use -o FILE or redirect stdout")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			if output == "" {
				return s.images.Export(s.ctx, c.App.Writer, c.Args().Slice(), opts)
			}
			return writeFileAtomically(output, func(w io.Writer) error {
				return s.images.Export(s.ctx, w, c.Args().Slice(), opts)
			})
		},
	}
}

func parseSaveFormat(format string) (images.ExportOptions, error) {
	switch format {
	case "", "docker-archive", "docker":
		return images.ExportOptions{}, nil
	case "oci", "oci-archive":
		return images.ExportOptions{OCIOnly: true}, nil
	}
	return images.ExportOptions{}, fmt.Errorf("save: --format %q: want docker-archive or oci", format)
}

// writeFileAtomically writes path through a temporary file in the same
// directory, so a failed save leaves no partial tarball behind.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images from a tarball (docker save or OCI layout) on stdin or -i FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "read from this file instead of stdin"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image names"},
			&cli.StringFlag{Name: "base-name", Usage: "name for images the archive knows only by tag, e.g. localhost/app"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return fmt.Errorf("load: unexpected arguments %q; give the file with -i", c.Args().Slice())
			}
			var in io.Reader = c.App.Reader
			if path := c.String("input"); path != "" {
				f, err := os.Open(path)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				in = f
			} else if stdioIsTerminal(in) {
				return fmt.Errorf("load: stdin is a terminal; use -i FILE or redirect stdin")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			loaded, err := s.images.Import(s.ctx, in, images.ImportOptions{BaseName: c.String("base-name")})
			if err != nil {
				return fmt.Errorf("load: %w", err)
			}
			for _, img := range loaded {
				if c.Bool("quiet") {
					fmt.Fprintln(c.App.Writer, img.Name)
				} else {
					fmt.Fprintf(c.App.Writer, "Loaded image: %s\n", familiarImageName(img.Name))
				}
			}
			return nil
		},
	}
}

func imageInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show images as JSON, Docker's fields",
		ArgsUsage: "IMAGE [IMAGE...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template applied to each image, e.g. '{{.Config.Cmd}}' or '{{json .RootFS}}'"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("image inspect: IMAGE is required")
			}
			s, err := newSession(c)
			if err != nil {
				return err
			}
			defer s.Close()
			var out []imageInspect
			var failures []error
			for _, arg := range c.Args().Slice() {
				d, err := s.images.Inspect(s.ctx, arg)
				if err != nil {
					failures = append(failures, fmt.Errorf("image inspect: %w", err))
					continue
				}
				out = append(out, newImageInspect(d))
			}
			if err := printObjects(c.App.Writer, out, c.String("format")); err != nil {
				return err
			}
			return reportEach(c, failures)
		},
	}
}

// imageInspect is one image in `docker image inspect`'s shape. The field
// is Id, not ID, so that `--format '{{.Id}}'` works as with Docker.
type imageInspect struct {
	Id           string   `json:"Id"`
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	Created      string   `json:"Created"`
	Author       string   `json:"Author"`
	Architecture string   `json:"Architecture"`
	Variant      string   `json:"Variant,omitempty"`
	Os           string   `json:"Os"`
	Size         int64    `json:"Size"`
	Config       imageInspectConfig
	RootFS       imageInspectRootFS
	Metadata     imageInspectMetadata
}

type imageInspectConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type imageInspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

type imageInspectMetadata struct {
	// LastTagTime is when the newest of the image's names was made.
	LastTagTime string `json:"LastTagTime"`
}

func newImageInspect(d *images.Details) imageInspect {
	out := imageInspect{
		Id:           d.ID.String(),
		RepoTags:     []string{},
		RepoDigests:  []string{},
		Author:       d.Spec.Author,
		Architecture: d.Platform.Architecture,
		Variant:      d.Platform.Variant,
		Os:           d.Platform.OS,
		Size:         d.Size,
		RootFS:       imageInspectRootFS{Type: d.Spec.RootFS.Type, Layers: []string{}},
	}
	if d.Created != nil {
		out.Created = d.Created.UTC().Format(time.RFC3339Nano)
	}
	cfg := d.Spec.Config
	out.Config = imageInspectConfig{
		User: cfg.User, ExposedPorts: cfg.ExposedPorts, Env: cfg.Env, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint,
		Volumes: cfg.Volumes, WorkingDir: cfg.WorkingDir, Labels: cfg.Labels, StopSignal: cfg.StopSignal,
	}
	for _, l := range d.Spec.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, l.String())
	}
	var lastTag time.Time
	seen := map[string]bool{}
	for _, n := range d.Names {
		if n.CreatedAt.After(lastTag) {
			lastTag = n.CreatedAt
		}
		ref, err := images.ParseReference(n.Name)
		if err != nil {
			continue
		}
		if ref.Digest == "" {
			out.RepoTags = append(out.RepoTags, familiarImageName(n.Name))
		}
		repoDigest := familiarImageName(ref.Repository() + "@" + n.Target.Digest.String())
		if !seen[repoDigest] {
			seen[repoDigest] = true
			out.RepoDigests = append(out.RepoDigests, repoDigest)
		}
	}
	if !lastTag.IsZero() {
		out.Metadata.LastTagTime = lastTag.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// printObjects prints a JSON array as Docker does, or the template once
// per object.
func printObjects[T any](w io.Writer, objects []T, format string) error {
	if format == "" || format == "json" {
		if objects == nil {
			objects = []T{}
		}
		data, err := json.MarshalIndent(objects, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{"json": toJSON}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	for _, o := range objects {
		if err := tmpl.Execute(w, o); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// familiarImageName is the short form Docker prints ("busybox:latest"); a name
// that does not parse is printed as stored.
func familiarImageName(name string) string {
	ref, err := images.ParseReference(name)
	if err != nil {
		return name
	}
	return ref.Familiar()
}

// stdioIsTerminal reports whether r or w is a terminal (tests pass buffers).
func stdioIsTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
