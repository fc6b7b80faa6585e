package images

import (
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
)

// Service does image work in containerd. The containerd namespace comes
// from the context of each call, as everywhere in containerd's client.
type Service struct {
	client      *containerd.Client
	snapshotter string
	registry    RegistryOptions
	described   describeCache
}

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Snapshotter images are unpacked into; empty means overlayfs.
	Snapshotter string
	Registry    RegistryOptions
}

// NewService returns a Service using client.
func NewService(client *containerd.Client, opts ServiceOptions) *Service {
	snapshotter := opts.Snapshotter
	if snapshotter == "" {
		snapshotter = defaults.DefaultSnapshotter
	}
	return &Service{client: client, snapshotter: snapshotter, registry: opts.Registry}
}

// Snapshotter is the snapshotter images are unpacked into.
func (s *Service) Snapshotter() string {
	return s.snapshotter
}
