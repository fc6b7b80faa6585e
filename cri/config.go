package cri

import (
	"fmt"
	"path/filepath"
	"time"

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
	// Stream configures the streaming server behind Exec, Attach and
	// PortForward (streaming_server.go).
	Stream StreamConfig
	// StreamAddress is the streaming server's host:port; port 0 picks a
	// free port. Empty means DefaultStreamAddress.
	StreamAddress string
	// NRI relays the pod and container lifecycle to NRI plugins (nri.go);
	// off unless NRI.Enable.
	NRI NRIConfig
}

// StreamConfig is the streaming server's transport configuration.
type StreamConfig struct {
	// IdleTimeout closes a streaming connection that carried nothing for
	// that long; 0 means DefaultStreamIdleTimeout.
	IdleTimeout time.Duration
	// TLSCertFile and TLSKeyFile, both set, serve streams over HTTPS.
	TLSCertFile string
	TLSKeyFile  string
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
	// DefaultStreamAddress keeps streams on the loopback with a free port:
	// only a client on this host (the kubelet) reaches them.
	DefaultStreamAddress = "127.0.0.1:0"
	// DefaultStreamIdleTimeout is the kubelet's own default.
	DefaultStreamIdleTimeout = 4 * time.Hour
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
	if c.StreamAddress == "" {
		c.StreamAddress = DefaultStreamAddress
	}
	if c.Stream.IdleTimeout == 0 {
		c.Stream.IdleTimeout = DefaultStreamIdleTimeout
	}
	if c.Stream.IdleTimeout < 0 {
		return c, fmt.Errorf("stream idle timeout %v is negative: %w", c.Stream.IdleTimeout, errdefs.ErrInvalidArgument)
	}
	if (c.Stream.TLSCertFile == "") != (c.Stream.TLSKeyFile == "") {
		return c, fmt.Errorf("stream TLS needs both a certificate and a key file: %w", errdefs.ErrInvalidArgument)
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

// containerFIFODir holds the stdio FIFOs of a container that kcrid owns
// (created with stdin or tty, see container_attach_io.go); the path is
// derived from the ID alone so a restarted kcrid finds them again.
func (c Config) containerFIFODir(id string) string {
	return filepath.Join(c.fifoDir(), "containers", id)
}
