package kubelet

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"
	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultPullPolicy is the API server's default: Always for ":latest" or
// no tag (and no digest), IfNotPresent otherwise.
func defaultPullPolicy(image string) v1.PullPolicy {
	ref, err := reference.ParseAnyReference(image)
	if err != nil {
		return v1.PullIfNotPresent // validation or the pull will report it
	}
	if _, ok := ref.(reference.Digested); ok {
		return v1.PullIfNotPresent
	}
	if tagged, ok := ref.(reference.Tagged); ok && tagged.Tag() != "latest" {
		return v1.PullIfNotPresent
	}
	return v1.PullAlways
}

// errImageNeverPull is the kubelet's ErrImageNeverPull.
var errImageNeverPull = errors.New("image is not present and imagePullPolicy is Never")

// imagePuller pulls images for containers according to their policy.
type imagePuller struct {
	images internalapi.ImageManagerService
}

// ensureImage makes c's image present according to its pull policy. The
// container is then created from the image name (both kcrid and containerd
// resolve it), unlike the kubelet, which passes the image ID.
func (p *imagePuller) ensureImage(ctx context.Context, c *v1.Container, sandbox *runtimeapi.PodSandboxConfig) error {
	spec := &runtimeapi.ImageSpec{Image: c.Image}
	if c.ImagePullPolicy != v1.PullAlways {
		st, err := p.images.ImageStatus(ctx, spec, false)
		if err != nil {
			return fmt.Errorf("image status %s: %w", c.Image, err)
		}
		if st.GetImage() != nil {
			return nil
		}
		if c.ImagePullPolicy == v1.PullNever {
			return fmt.Errorf("%s: %w", c.Image, errImageNeverPull)
		}
	}
	if _, err := p.images.PullImage(ctx, spec, nil, sandbox); err != nil {
		return &pullError{image: c.Image, err: err}
	}
	return nil
}

// pullError is a failed pull (ErrImagePull in the status).
type pullError struct {
	image string
	err   error
}

func (e *pullError) Error() string { return fmt.Sprintf("pull %s: %v", e.image, e.err) }
func (e *pullError) Unwrap() error { return e.err }
