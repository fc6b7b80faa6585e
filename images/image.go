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
}

// describe reads the config of record for this machine's platform.
func (s *Service) describe(ctx context.Context, record images.Image) (*Image, error) {
	img := &Image{
		Name:      record.Name,
		Target:    record.Target,
		ID:        record.Target.Digest,
		CreatedAt: record.CreatedAt,
		Labels:    record.Labels,
	}
	handle := containerd.NewImageWithPlatform(s.client, record, platforms.Default())
	configDesc, err := handle.Config(ctx)
	if err != nil {
		return img, nil
	}
	img.ID = configDesc.Digest
	if spec, err := handle.Spec(ctx); err == nil {
		img.Created = spec.Created
		img.Platform = spec.Platform
		img.Config = spec.Config
	}
	if size, err := handle.Size(ctx); err == nil {
		img.Size = size
	}
	available, _, _, missing, err := images.Check(ctx, s.client.ContentStore(), record.Target, platforms.Default())
	img.Complete = err == nil && available && len(missing) == 0
	return img, nil
}
