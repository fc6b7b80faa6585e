package images

import (
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"golang.org/x/sync/semaphore"
)

// keptLayersBudget bounds the layer bytes a Service keeps in memory for
// unpacking in process, over all its pulls; layers beyond it are unpacked
// by the daemon.
const keptLayersBudget = 64 << 20

// Service does image work in containerd. The containerd namespace comes
// from the context of each call, as everywhere in containerd's client.
type Service struct {
	client      *containerd.Client
	snapshotter string
	registry    RegistryOptions
	described   describeCache
	// keptLayers is nil unless layers are unpacked in process.
	keptLayers *semaphore.Weighted
}

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Snapshotter images are unpacked into; empty means overlayfs.
	Snapshotter string
	Registry    RegistryOptions
	// UnpackInProcess lets pulls write layers into the snapshotter's dirs
	// from this process rather than through the daemon's diff service,
	// where the snapshotter cannot rebase (layers are applied one after
	// the other). Set it only when SharesDaemonFilesystem says this
	// process sees the daemon's files.
	UnpackInProcess bool
}

// NewService returns a Service using client.
func NewService(client *containerd.Client, opts ServiceOptions) *Service {
	snapshotter := opts.Snapshotter
	if snapshotter == "" {
		snapshotter = defaults.DefaultSnapshotter
	}
	s := &Service{client: client, snapshotter: snapshotter, registry: opts.Registry}
	if opts.UnpackInProcess {
		s.keptLayers = semaphore.NewWeighted(keptLayersBudget)
	}
	return s
}

// Snapshotter is the snapshotter images are unpacked into.
func (s *Service) Snapshotter() string {
	return s.snapshotter
}
