package kubelet

import (
	"errors"
	"log/slog"
	"net"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
)

// Config is everything the agent needs; cmd/kubelet-lite fills it from flags.
type Config struct {
	// ManifestDir holds the pod manifests (YAML or JSON).
	ManifestDir string
	// RootDir keeps emptyDir volumes (<RootDir>/pods/<uid>/volumes/...).
	RootDir string
	// PodLogsDir is where container logs go:
	// <PodLogsDir>/<namespace>_<name>_<uid>/<container>/<restart>.log.
	PodLogsDir string
	// NodeName is part of every pod's UID and its spec.nodeName.
	NodeName string
	// NodeIP is the pods' status.hostIP and the pod IP of host-network
	// pods. Empty: the source address of the default route, if any.
	NodeIP string

	// SyncFrequency is the full resync period: every pod worker re-checks
	// its pod even when nothing was reported.
	SyncFrequency time.Duration
	// RelistPeriod is how often the runtime is listed to notice exits when
	// it offers no container events (containerd 1.6). With events it is
	// SyncFrequency.
	RelistPeriod time.Duration
	// FileCheckFrequency is how often the manifest dir is checked.
	FileCheckFrequency time.Duration

	// RemoveForeign removes sandboxes and containers kubelet-lite did not
	// create (as the kubelet removes orphaned pods); off, they are left alone.
	RemoveForeign bool

	// Backoff is the CrashLoopBackOff policy.
	Backoff Backoff

	// ResolvConf is the host's resolver config pods inherit (ClusterFirst
	// falls back to it: there is no cluster DNS). Empty: /etc/resolv.conf.
	ResolvConf string

	Runtime internalapi.RuntimeService
	Images  internalapi.ImageManagerService
	// Logger gets one line per action and problem; nil discards.
	Logger *slog.Logger
}

// Defaults (the kubelet's, where it has one).
const (
	DefaultManifestDir        = "/etc/kubernetes/manifests"
	DefaultRootDir            = "/var/lib/kubelet-lite"
	DefaultPodLogsDir         = "/var/log/pods"
	DefaultSyncFrequency      = time.Minute
	DefaultRelistPeriod       = time.Second
	DefaultFileCheckFrequency = 20 * time.Second
	DefaultHTTPAddr           = "127.0.0.1:10255"
	DefaultBackoffInitial     = 10 * time.Second
	DefaultBackoffMax         = 5 * time.Minute
	DefaultBackoffReset       = 10 * time.Minute
)

func (c Config) withDefaults() (Config, error) {
	if c.Runtime == nil || c.Images == nil {
		return c, errors.New("kubelet: Config needs a runtime and an image service")
	}
	if c.NodeName == "" {
		return c, errors.New("kubelet: Config needs a node name")
	}
	if c.ManifestDir == "" {
		c.ManifestDir = DefaultManifestDir
	}
	if c.RootDir == "" {
		c.RootDir = DefaultRootDir
	}
	if c.PodLogsDir == "" {
		c.PodLogsDir = DefaultPodLogsDir
	}
	if c.SyncFrequency <= 0 {
		c.SyncFrequency = DefaultSyncFrequency
	}
	if c.RelistPeriod <= 0 {
		c.RelistPeriod = DefaultRelistPeriod
	}
	if c.FileCheckFrequency <= 0 {
		c.FileCheckFrequency = DefaultFileCheckFrequency
	}
	if c.Backoff.Initial <= 0 {
		c.Backoff.Initial = DefaultBackoffInitial
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = DefaultBackoffMax
	}
	if c.Backoff.Max < c.Backoff.Initial {
		c.Backoff.Max = c.Backoff.Initial
	}
	if c.Backoff.Reset <= 0 {
		c.Backoff.Reset = DefaultBackoffReset
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.NodeIP == "" {
		c.NodeIP = defaultRouteIP()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// defaultRouteIP is the local address the kernel would use towards the
// outside (a UDP "connection" sends nothing); "" without a default route.
func defaultRouteIP() string {
	conn, err := net.Dial("udp4", "203.0.113.1:9") // TEST-NET-3; dialing UDP sends nothing
	if err != nil {
		return ""
	}
	defer conn.Close()
	if addr, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return addr.IP.String()
	}
	return ""
}
