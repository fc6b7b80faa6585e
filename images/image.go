package images

import (
	"context"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is what users ask about an image: its name, what it points at and
// the parts of its config that matter for running it.
type Image struct {
	// Name is the fully qualified name containerd stores the image under.
	Name string
	// Target is the manifest or index the name points at; its digest is
	// the repo digest.
	Target ocispec.Descriptor
	// ID is the config digest, the image ID in Docker's and the CRI's sense.
	// It equals Target.Digest when the config for this platform is missing.
	ID digest.Digest
	// Size counts the blobs of this platform in the content store.
	Size      int64
	CreatedAt time.Time
	// Created is from the image config; nil when the config does not say.
	Created  *time.Time
	Platform ocispec.Platform
	Config   ocispec.ImageConfig
	Labels   map[string]string
	// Complete is false when some content of this platform is missing,
	// e.g. an index whose other platforms were never pulled.
	Complete bool
	// DiffIDs are the uncompressed layer digests from the config; their
	// chain ID names the unpacked snapshot.
	DiffIDs []digest.Digest
}

// Record is the image store's record of img.
func (img *Image) Record() images.Image {
	return images.Image{Name: img.Name, Target: img.Target, Labels: img.Labels, CreatedAt: img.CreatedAt}
}

// describe reads the config of record for this machine's platform; what
// it reads from content is cached per target digest (describeCache).
func (s *Service) describe(ctx context.Context, record images.Image) (*Image, error) {
	img := &Image{
		Name:      record.Name,
		Target:    record.Target,
		CreatedAt: record.CreatedAt,
		Labels:    record.Labels,
	}
	d, ok := s.described.get(record.Target.Digest)
	if !ok {
		d = s.readDescription(ctx, record)
		s.described.put(record.Target.Digest, d)
	}
	img.setDescription(d)
	return img, nil
}

// readDescription reads the content-derived part of an image.
func (s *Service) readDescription(ctx context.Context, record images.Image) description {
	d := description{ID: record.Target.Digest}
	handle := containerd.NewImageWithPlatform(s.client, record, platforms.Default())
	configDesc, err := handle.Config(ctx)
	if err != nil {
		return d
	}
	d.ID = configDesc.Digest
	if spec, err := handle.Spec(ctx); err == nil {
		d.Created = spec.Created
		d.Platform = spec.Platform
		d.Config = spec.Config
		d.DiffIDs = spec.RootFS.DiffIDs
	}
	if size, err := handle.Size(ctx); err == nil {
		d.Size = size
	}
	available, _, _, missing, err := images.Check(ctx, s.client.ContentStore(), record.Target, platforms.Default())
	d.Complete = err == nil && available && len(missing) == 0
	return d
}
