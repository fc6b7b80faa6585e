package images

import (
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/log"
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
	// keptLayers and unpackInProcess are nil unless layers may be
	// unpacked in process.
	keptLayers      *semaphore.Weighted
	unpackInProcess func() bool
}

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Snapshotter images are unpacked into; empty means overlayfs.
	Snapshotter string
	Registry    RegistryOptions
	// UnpackInProcess, when set, is asked at the first pull whether pulls
	// may write layers into the snapshotter's dirs from this process
	// rather than through the daemon's diff service, which they then do
	// where the snapshotter cannot rebase (layers applied one after the
	// other). SharesDaemonFilesystem answers it for a daemon's address.
	UnpackInProcess func() (bool, error)
}

// NewService returns a Service using client.
func NewService(client *containerd.Client, opts ServiceOptions) *Service {
	snapshotter := opts.Snapshotter
	if snapshotter == "" {
		snapshotter = defaults.DefaultSnapshotter
	}
	s := &Service{client: client, snapshotter: snapshotter, registry: opts.Registry}
	if ask := opts.UnpackInProcess; ask != nil {
		s.keptLayers = semaphore.NewWeighted(keptLayersBudget)
		s.unpackInProcess = sync.OnceValue(func() bool {
			ok, err := ask()
			if !ok {
				entry := log.L
				if err != nil {
					entry = entry.WithError(err)
				}
				entry.Info("image layers are unpacked by containerd: this process does not see its files as it does")
			}
			return ok
		})
	}
	return s
}

// Snapshotter is the snapshotter images are unpacked into.
func (s *Service) Snapshotter() string {
	return s.snapshotter
}
