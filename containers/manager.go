package containers

import (
	containerd "github.com/containerd/containerd/v2/client"

	"github.com/kctr/kctr/images"
)

// DefaultRuntime is the shim every container runs under unless told otherwise.
const DefaultRuntime = "io.containerd.runc.v2"

// Labels kctr puts on the containers it makes.
const (
	// LabelName holds the user-facing name; containerd only knows IDs.
	LabelName = "kctr/name"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Runtime defaults to DefaultRuntime.
	Runtime string
	// RuntimeOptions go to the shim, e.g. runc options with a private
	// state root when several containerd daemons share a host.
	RuntimeOptions any
}

// Manager creates and runs containers in containerd. The namespace comes
// from each call's context.
type Manager struct {
	client         *containerd.Client
	images         *images.Service
	runtime        string
	runtimeOptions any
}

// NewManager returns a Manager that gets images through imageService.
func NewManager(client *containerd.Client, imageService *images.Service, opts ManagerOptions) *Manager {
	runtime := opts.Runtime
	if runtime == "" {
		runtime = DefaultRuntime
	}
	return &Manager{client: client, images: imageService, runtime: runtime, runtimeOptions: opts.RuntimeOptions}
}
