package containers

import (
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/kctr/kctr/crilog"
	"github.com/kctr/kctr/images"
)

// DefaultRuntime is the shim every container runs under unless told otherwise.
const DefaultRuntime = "io.containerd.runc.v2"

// DefaultDataRoot holds kctr's container logs.
const DefaultDataRoot = "/var/lib/kctr"

// Labels kctr puts on the containers it makes.
const (
	// LabelName holds the user-facing name; containerd only knows IDs.
	LabelName = "kctr/name"
	// LabelLogPath is where the container's log file is.
	LabelLogPath = "kctr/log-path"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Runtime defaults to DefaultRuntime.
	Runtime string
	// RuntimeOptions go to the shim, e.g. runc options with a private
	// state root when several containerd daemons share a host.
	RuntimeOptions any
	// DataRoot holds container logs; empty means DefaultDataRoot.
	DataRoot string
	// LogWriter is the executable the shim starts to write a detached
	// container's log (it must answer crilog.IsWriterInvocation); empty
	// means this process's own executable.
	LogWriter string
	// Network configures the bridge network.
	Network NetworkOptions
}

// Manager creates and runs containers in containerd. The namespace comes
// from each call's context.
type Manager struct {
	client         *containerd.Client
	images         *images.Service
	runtime        string
	runtimeOptions any
	dataRoot       string
	logWriter      string
	bridge         *bridgeNetworking
}

// NewManager returns a Manager that gets images through imageService.
func NewManager(client *containerd.Client, imageService *images.Service, opts ManagerOptions) *Manager {
	m := &Manager{
		client:         client,
		images:         imageService,
		runtime:        opts.Runtime,
		runtimeOptions: opts.RuntimeOptions,
		dataRoot:       opts.DataRoot,
		logWriter:      opts.LogWriter,
		bridge:         newBridgeNetworking(opts.Network),
	}
	if m.runtime == "" {
		m.runtime = DefaultRuntime
	}
	if m.dataRoot == "" {
		m.dataRoot = DefaultDataRoot
	}
	return m
}

// containerDir holds a container's log and its /etc/hosts, /etc/hostname
// and /etc/resolv.conf.
func (m *Manager) containerDir(namespace, id string) string {
	return filepath.Join(m.dataRoot, "containers", namespace, id)
}

func (m *Manager) logPath(namespace, id string) string {
	return filepath.Join(m.containerDir(namespace, id), id+"-cri.log")
}

func (m *Manager) logWriterBinary() (string, error) {
	if m.logWriter != "" {
		return m.logWriter, nil
	}
	return crilog.WriterExecutable()
}
