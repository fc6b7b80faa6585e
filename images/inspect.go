package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Details is what `image inspect` shows about one image: the image, every
// name in the namespace that has the same ID, and its whole config (history
// and rootfs included) for this machine's platform.
type Details struct {
	*Image
	// Names are sorted; each one's Target may differ (an index and a
	// manifest can share a config).
	Names []*Image
	// Spec is the zero value when the config blob is not present.
	Spec ocispec.Image
}

// Inspect finds nameOrID as Get does and gathers its Details.
func (s *Service) Inspect(ctx context.Context, nameOrID string) (*Details, error) {
	img, err := s.Get(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	names, err := s.NamesOf(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	details := &Details{Image: img, Names: names}
	record, err := s.client.ImageService().Get(ctx, img.Name)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", img.Name, err)
	}
	handle := containerd.NewImageWithPlatform(s.client, record, platforms.Default())
	if spec, err := handle.Spec(ctx); err == nil {
		details.Spec = spec
	}
	return details, nil
}

// NamesOf returns every image in the namespace whose ID is id, sorted by
// name; none once the image is gone.
func (s *Service) NamesOf(ctx context.Context, id digest.Digest) ([]*Image, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, img := range all {
		if img.ID == id {
			out = append(out, img)
		}
	}
	return out, nil
}
