package images

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

// PushOptions tunes one push.
type PushOptions struct {
	// Platform limits an index to one platform's content; empty means
	// this machine's.
	Platform string
	Auth     *AuthConfig
}

// Push uploads the local image localName to remoteName (which may be the
// same name).
func (s *Service) Push(ctx context.Context, localName, remoteName string, opts PushOptions) error {
	img, err := s.Get(ctx, localName)
	if err != nil {
		return fmt.Errorf("push %s: %w", localName, err)
	}
	if remoteName == "" {
		remoteName = img.Name
	}
	ref, err := ParseReference(remoteName)
	if err != nil {
		return fmt.Errorf("push %s: %w", localName, err)
	}
	matcher := platforms.Default()
	if opts.Platform != "" {
		p, err := platforms.Parse(opts.Platform)
		if err != nil {
			return fmt.Errorf("push %s: platform %q: %v: %w", ref, opts.Platform, err, errdefs.ErrInvalidArgument)
		}
		matcher = platforms.Only(p)
	}
	resolver, err := s.registry.newResolver(ctx, ref, opts.Auth)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	err = s.client.Push(ctx, ref.String(), img.Target,
		containerd.WithResolver(resolver),
		containerd.WithPlatformMatcher(matcher),
	)
	return registryError("push", ref, err)
}
