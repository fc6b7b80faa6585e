package images

import (
	"context"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

// ImportOptions tunes Import.
type ImportOptions struct {
	// BaseName names images whose archive entry carries only a tag
	// (OCI layouts often do): "localhost/app" + "v1" → "localhost/app:v1".
	BaseName string
	// SkipUnpack leaves imported images packed.
	SkipUnpack bool
}

// Import loads an OCI image layout tarball or a docker-archive (`docker
// save`) tarball and unpacks the images for this platform.
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions) (_ []*Image, retErr error) {
	ctx, releaseLease, err := s.temporaryLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer func() { releaseLease(retErr != nil) }()

	importOpts := []containerd.ImportOpt{
		containerd.WithImportPlatform(platforms.DefaultStrict()),
		containerd.WithImageRefTranslator(archiveNameTranslator(opts.BaseName)),
	}
	records, err := s.client.Import(ctx, r, importOpts...)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("import: the archive names no image; give a base name: %w", errdefs.ErrInvalidArgument)
	}
	out := make([]*Image, 0, len(records))
	for _, record := range records {
		if !opts.SkipUnpack {
			handle := containerd.NewImageWithPlatform(s.client, record, platforms.DefaultStrict())
			if err := handle.Unpack(ctx, s.snapshotter); err != nil {
				return nil, fmt.Errorf("import: unpack %s: %w", record.Name, err)
			}
		}
		img, err := s.describe(ctx, record)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// archiveNameTranslator turns an OCI ref.name annotation into an image name:
// a full reference is normalised, a bare tag is joined to baseName, and
// anything else is dropped rather than stored under a bogus name.
func archiveNameTranslator(baseName string) func(string) string {
	return func(name string) string {
		if baseName != "" {
			if ref, err := ParseReference(baseName + ":" + name); err == nil {
				return ref.String()
			}
		}
		if ref, err := ParseReference(name); err == nil && (ref.Domain != "docker.io" || strings.ContainsAny(name, "/:")) {
			return ref.String()
		}
		return ""
	}
}

// ExportOptions tunes Export.
type ExportOptions struct {
	// OCIOnly leaves out Docker's manifest.json; by default the tarball
	// loads both as an OCI layout and with `docker load`.
	OCIOnly bool
}

// Export writes the named images, this platform's content, as one tarball.
func (s *Service) Export(ctx context.Context, w io.Writer, names []string, opts ExportOptions) error {
	if len(names) == 0 {
		return fmt.Errorf("export: no image named: %w", errdefs.ErrInvalidArgument)
	}
	exportOpts := []archive.ExportOpt{archive.WithPlatform(platforms.DefaultStrict())}
	for _, name := range names {
		img, err := s.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		exportOpts = append(exportOpts, archive.WithImage(s.client.ImageService(), img.Name))
	}
	if opts.OCIOnly {
		exportOpts = append(exportOpts, archive.WithSkipDockerManifest())
	}
	if err := s.client.Export(ctx, w, exportOpts...); err != nil {
		return fmt.Errorf("export %v: %w", names, err)
	}
	return nil
}
