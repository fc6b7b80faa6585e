package images

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
)

// List returns every image in the namespace, sorted by name. Filters use
// containerd's syntax, e.g. `name~="busybox"`.
func (s *Service) List(ctx context.Context, filters ...string) ([]*Image, error) {
	records, err := s.client.ImageService().List(ctx, filters...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(records))
	for _, record := range records {
		img, err := s.describe(ctx, record)
		if err != nil {
			return nil, fmt.Errorf("describe image %s: %w", record.Name, err)
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get finds an image by name (normalised, so "busybox" works), by full ID
// or repo digest, or by an unambiguous ID prefix of at least 4 hex digits,
// as Docker accepts.
func (s *Service) Get(ctx context.Context, nameOrID string) (*Image, error) {
	matches, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	return matches[0], nil
}

// Resolve is Get that returns every image record nameOrID denotes: one for
// a name, possibly several names for an image ID.
func (s *Service) Resolve(ctx context.Context, nameOrID string) ([]*Image, error) {
	if ref, err := ParseReference(nameOrID); err == nil {
		record, err := s.client.ImageService().Get(ctx, ref.String())
		if err == nil {
			img, err := s.describe(ctx, record)
			if err != nil {
				return nil, err
			}
			return []*Image{img}, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("get image %s: %w", ref, err)
		}
	}
	prefix := strings.TrimPrefix(nameOrID, "sha256:")
	if len(prefix) < 4 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return nil, localNotFound(nameOrID)
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var matches []*Image
	ids := map[string]bool{}
	for _, img := range all {
		id := strings.TrimPrefix(img.ID.String(), "sha256:")
		repoDigest := strings.TrimPrefix(img.Target.Digest.String(), "sha256:")
		if strings.HasPrefix(id, prefix) || strings.HasPrefix(repoDigest, prefix) {
			matches = append(matches, img)
			ids[img.ID.String()] = true
		}
	}
	switch {
	case len(matches) == 0:
		return nil, localNotFound(nameOrID)
	case len(ids) > 1:
		return nil, fmt.Errorf("image ID prefix %q matches %d different images: %w", nameOrID, len(ids), errdefs.ErrInvalidArgument)
	}
	return matches, nil
}
