package images

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
)

// Tag gives the image source another name; an existing target name is
// moved to the new image, as `docker tag` does.
func (s *Service) Tag(ctx context.Context, source, target string) (*Image, error) {
	src, err := s.Get(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("tag %s: %w", source, err)
	}
	targetRef, err := ParseReference(target)
	if err != nil {
		return nil, fmt.Errorf("tag %s: %w", source, err)
	}
	store := s.client.ImageService()
	record := images.Image{Name: targetRef.String(), Target: src.Target, Labels: src.Labels}
	created, err := store.Create(ctx, record)
	if errdefs.IsAlreadyExists(err) {
		created, err = store.Update(ctx, record, "target")
	}
	if err != nil {
		return nil, fmt.Errorf("tag %s as %s: %w", src.Name, targetRef, err)
	}
	return s.describe(ctx, created)
}
