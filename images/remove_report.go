package images

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Removal is what `rmi` reports for one argument: the names removed and,
// once the image ID has no name left, the ID (empty otherwise).
type Removal struct {
	Untagged []string
	Deleted  digest.Digest
}

// RemoveImage is Remove that also tells whether the image itself went, as
// Docker's "Untagged:"/"Deleted:" lines do. Untagged holds what was
// removed even when err is not nil.
func (s *Service) RemoveImage(ctx context.Context, nameOrID string, opts RemoveOptions) (Removal, error) {
	img, err := s.Get(ctx, nameOrID)
	if err != nil {
		return Removal{}, fmt.Errorf("remove image: %w", err)
	}
	removed, err := s.Remove(ctx, nameOrID, opts)
	out := Removal{Untagged: removed}
	if err != nil {
		return out, err
	}
	left, err := s.NamesOf(ctx, img.ID)
	if err != nil {
		return out, err
	}
	if len(left) == 0 {
		out.Deleted = img.ID
	}
	return out, nil
}
