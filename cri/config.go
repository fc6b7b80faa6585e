package cri

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/crilog"
)

// Config is everything kcrid's server needs; cmd/kcrid fills it from flags
// and the config file.
type Config struct {
	// ContainerdAddress is containerd's socket.
	ContainerdAddress string
	// Namespace is the containerd namespace for every object (k8s.io).
	Namespace string
	// RootDir keeps per-sandbox files (hostname, hosts, resolv.conf).
	RootDir string
	// StateDir keeps network namespaces and exec FIFOs; it may be a tmpfs.
	StateDir string
	// SandboxImage is the pause image, pulled when missing.
	SandboxImage string
	// CNIBinDirs hold plugin binaries, CNIConfDir the network configs.
	CNIBinDirs []string
	CNIConfDir string
	// HostsDir is a registry hosts dir (certs.d layout) for mirrors.
	HostsDir string
	// Snapshotter images are unpacked into; empty means overlayfs.
	Snapshotter string
	// Runtime configures the runc shim for every task kcrid creates.
	Runtime RuntimeOptions
	// LogWriter is the program the shim runs to write container logs
	// (binary:// log driver): by default kctr-logwriter beside kcrid's
	// executable, else kcrid itself, which answers to the crilog writer
	// invocation (crilog.WriterExecutable).
	LogWriter string
	// StreamAddress is reserved for streaming (Exec/Attach, issue 6).
	StreamAddress string
}

// RuntimeOptions are the runc shim options. A private Root keeps two
// containerd daemons on one host from sharing runc state.
type RuntimeOptions struct {
	// Root is runc's state dir; empty means the shim's default.
	Root string
	// BinaryName is the runc binary; empty means "runc" from PATH.
	BinaryName string
}

// Defaults for the daemon.
const (
	DefaultNamespace    = "k8s.io"
	DefaultRootDir      = "/var/lib/kcrid"
	DefaultStateDir     = "/run/kcrid"
	DefaultSandboxImage = "registry.k8s.io/pause:3.10"
	DefaultCNIConfDir   = "/etc/cni/net.d"
	DefaultCNIBinDir    = "/usr/lib/cni"
	DefaultContainerd   = "/run/containerd/containerd.sock"
)

// withDefaults fills empty fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.ContainerdAddress == "" {
		c.ContainerdAddress = DefaultContainerd
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.RootDir == "" {
		c.RootDir = DefaultRootDir
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.SandboxImage == "" {
		c.SandboxImage = DefaultSandboxImage
	}
	if len(c.CNIBinDirs) == 0 {
		c.CNIBinDirs = []string{DefaultCNIBinDir}
	}
	if c.CNIConfDir == "" {
		c.CNIConfDir = DefaultCNIConfDir
	}
	if c.LogWriter == "" {
		writer, err := crilog.WriterExecutable()
		if err != nil {
			return c, err
		}
		c.LogWriter = writer
	}
	for _, p := range []struct{ name, path string }{{"root dir", c.RootDir}, {"state dir", c.StateDir}, {"log writer", c.LogWriter}} {
		if !filepath.IsAbs(p.path) {
			return c, fmt.Errorf("%s %q must be an absolute path: %w", p.name, p.path, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

func (c Config) sandboxDir(id string) string { return filepath.Join(c.RootDir, "sandboxes", id) }
func (c Config) netnsDir() string            { return filepath.Join(c.StateDir, "netns") }
func (c Config) fifoDir() string             { return filepath.Join(c.StateDir, "fifo") }
