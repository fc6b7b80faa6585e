package images

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
)

// RemoveOptions tunes Remove.
type RemoveOptions struct {
	// Force removes every name of an image given by ID, and images that
	// containers still use (their rootfs snapshots keep working).
	Force bool
}

// Remove deletes the image names nameOrID denotes and returns them. Its
// blobs and snapshots are garbage collected before it returns when no other
// name uses them.
func (s *Service) Remove(ctx context.Context, nameOrID string, opts RemoveOptions) ([]string, error) {
	matches, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return nil, fmt.Errorf("remove image: %w", err)
	}
	if len(matches) > 1 && !opts.Force {
		names := make([]string, len(matches))
		for i, m := range matches {
			names[i] = m.Name
		}
		return nil, fmt.Errorf("remove image %s: it has %d names (%s); remove them by name or force: %w",
			nameOrID, len(matches), strings.Join(names, ", "), errdefs.ErrFailedPrecondition)
	}
	if !opts.Force {
		if err := s.checkUnused(ctx, matches[0].Name); err != nil {
			return nil, err
		}
	}
	var removed []string
	for i, m := range matches {
		var deleteOpts []images.DeleteOpt
		if i == len(matches)-1 {
			deleteOpts = append(deleteOpts, images.SynchronousDelete())
		}
		if err := s.client.ImageService().Delete(ctx, m.Name, deleteOpts...); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("remove image %s: %w", m.Name, err)
		}
		s.described.forget(m.Target.Digest)
		removed = append(removed, m.Name)
	}
	return removed, nil
}

func (s *Service) checkUnused(ctx context.Context, name string) error {
	users, err := s.client.Containers(ctx, fmt.Sprintf("image==%q", name))
	if err != nil {
		return fmt.Errorf("remove image %s: list containers: %w", name, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("remove image %s: container %s uses it (remove it first or force): %w",
			name, users[0].ID(), errdefs.ErrFailedPrecondition)
	}
	return nil
}
