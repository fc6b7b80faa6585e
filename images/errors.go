package images

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
)

// registryError turns what containerd's resolver and fetcher return into an
// error that names the registry and carries an errdefs class, so the CLI can
// print one clear line and the CRI server can pick the gRPC code.
func registryError(op string, ref Reference, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case errors.Is(err, docker.ErrInvalidAuthorization),
		strings.Contains(msg, "401 Unauthorized"),
		strings.Contains(msg, "403 Forbidden"):
		return fmt.Errorf("%s %s: registry %s denied access (missing or wrong credentials): %w: %w",
			op, ref, ref.Domain, errdefs.ErrUnauthenticated, err)
	case strings.Contains(msg, "unexpected commit digest"),
		strings.Contains(msg, "digest mismatch"),
		strings.Contains(msg, "unexpected commit size"):
		return fmt.Errorf("%s %s: content from registry %s does not match its digest: %w: %w",
			op, ref, ref.Domain, errdefs.ErrDataLoss, err)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s %s: not found in registry %s: %w", op, ref, ref.Domain, err)
	}
	return fmt.Errorf("%s %s: %w", op, ref, err)
}

// localNotFound is the error for an image that is not in containerd.
func localNotFound(name string) error {
	return fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
}
