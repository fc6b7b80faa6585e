package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/containerd/errdefs"
	gocni "github.com/containerd/go-cni"
)

// Options says where CNI plugins and network configs are.
type Options struct {
	// BinDirs hold the plugin binaries (/usr/lib/cni, /opt/cni/bin).
	BinDirs []string
	// ConfDir holds *.conf/*.conflist; the first one (by name) is used.
	ConfDir string
}

// Manager attaches pods to the CNI network configured in ConfDir. The
// config is re-read on every attach and status call, so a network config
// written after the daemon started is picked up.
type Manager struct {
	opts Options
	mu   sync.Mutex
	cni  gocni.CNI
}

// PortMapping is one host port forwarded into a pod (portmap plugin).
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // tcp, udp or sctp
	HostIP        string
}

// AttachOptions are per-pod inputs to CNI ADD and DEL.
type AttachOptions struct {
	PortMappings []PortMapping
	// Labels become CNI_ARGS (K8S_POD_NAME, K8S_POD_NAMESPACE, ...).
	Labels map[string]string
}

// Result is what a pod got from CNI.
type Result struct {
	// IPs of the pod's main interface (eth0), IPv4 first.
	IPs []string
}

// NewManager returns a Manager; it does not require a config to exist yet.
func NewManager(opts Options) (*Manager, error) {
	if len(opts.BinDirs) == 0 {
		opts.BinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	c, err := gocni.New(
		gocni.WithPluginDir(opts.BinDirs),
		gocni.WithPluginConfDir(opts.ConfDir),
		gocni.WithMinNetworkCount(1),
		gocni.WithInterfacePrefix("eth"),
	)
	if err != nil {
		return nil, fmt.Errorf("init cni: %w", err)
	}
	return &Manager{opts: opts, cni: c}, nil
}

// ErrNoConfig means the conf dir holds no usable network config.
var ErrNoConfig = errors.New("no CNI network config")

// load re-reads the conf dir. Callers hold m.mu.
func (m *Manager) load() error {
	if err := m.cni.Load(gocni.WithDefaultConf); err != nil {
		return fmt.Errorf("%w in %s: %v: %w", ErrNoConfig, m.opts.ConfDir, err, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// Status is nil when a network config is loaded and its plugins are found;
// otherwise the error says what is missing, for the NetworkReady reason.
func (m *Manager) Status() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.load(); err != nil {
		return err
	}
	if err := m.cni.Status(); err != nil {
		return fmt.Errorf("cni in %s: %w", m.opts.ConfDir, err)
	}
	return m.checkPlugins()
}

// checkPlugins reports a plugin binary the config names but BinDirs lack.
func (m *Manager) checkPlugins() error {
	cfg := m.cni.GetConfig()
	for _, n := range cfg.Networks {
		if n.Config == nil {
			continue
		}
		for _, p := range n.Config.Plugins {
			if p.Network == nil {
				continue
			}
			if !m.havePlugin(p.Network.Type) {
				return fmt.Errorf("cni plugin %q (network %q in %s) not found in %v", p.Network.Type, n.Config.Name, m.opts.ConfDir, m.opts.BinDirs)
			}
		}
	}
	return nil
}

func (m *Manager) havePlugin(name string) bool {
	for _, d := range m.opts.BinDirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// Attach runs CNI ADD for pod id in the namespace at nsPath. On error the
// networks already added are deleted again, so no IP stays allocated.
func (m *Manager) Attach(ctx context.Context, id, nsPath string, opts AttachOptions) (*Result, error) {
	m.mu.Lock()
	err := m.load()
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := loopbackUp(nsPath); err != nil {
		return nil, fmt.Errorf("cni add for pod %s: %w", id, err)
	}
	nsOpts := namespaceOptions(opts)
	res, err := m.cni.Setup(ctx, id, nsPath, nsOpts...)
	if err != nil {
		if delErr := m.cni.Remove(context.WithoutCancel(ctx), id, nsPath, nsOpts...); delErr != nil {
			err = fmt.Errorf("%w (and undoing it: %v)", err, delErr)
		}
		return nil, fmt.Errorf("cni add for pod %s: %w", id, err)
	}
	return &Result{IPs: podIPs(res)}, nil
}

// PendingAttach is a CNI ADD running in the background, so that a caller
// can create its container and task meanwhile: the namespace exists from
// the start and the plugins fill it in parallel.
type PendingAttach struct {
	done   chan struct{}
	result *Result
	err    error
}

// StartAttach starts Attach in the background. It runs to completion even
// if ctx is cancelled (a half-done ADD is worse than a finished one that
// the caller then undoes with Detach).
func (m *Manager) StartAttach(ctx context.Context, id, nsPath string, opts AttachOptions) *PendingAttach {
	p := &PendingAttach{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.result, p.err = m.Attach(context.WithoutCancel(ctx), id, nsPath, opts)
	}()
	return p
}

// Wait returns Attach's outcome once it is done. On error, Attach has
// already released what it held.
func (p *PendingAttach) Wait() (*Result, error) {
	<-p.done
	return p.result, p.err
}

// Detach runs CNI DEL. nsPath may name a namespace that is gone; plugins
// then release what they hold outside it (IPs, iptables rules).
func (m *Manager) Detach(ctx context.Context, id, nsPath string, opts AttachOptions) error {
	m.mu.Lock()
	err := m.load()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.cni.Remove(ctx, id, nsPath, namespaceOptions(opts)...); err != nil {
		return fmt.Errorf("cni del for pod %s: %w", id, err)
	}
	return nil
}

func namespaceOptions(opts AttachOptions) []gocni.NamespaceOpts {
	var out []gocni.NamespaceOpts
	if len(opts.Labels) > 0 {
		out = append(out, gocni.WithLabels(opts.Labels))
	}
	if len(opts.PortMappings) > 0 {
		pm := make([]gocni.PortMapping, 0, len(opts.PortMappings))
		for _, p := range opts.PortMappings {
			if p.HostPort <= 0 {
				continue
			}
			pm = append(pm, gocni.PortMapping{
				HostPort:      p.HostPort,
				ContainerPort: p.ContainerPort,
				Protocol:      p.Protocol,
				HostIP:        p.HostIP,
			})
		}
		out = append(out, gocni.WithCapabilityPortMap(pm))
	}
	return out
}

// podIPs picks eth0's addresses (the first non-loopback interface with an
// address otherwise), IPv4 before IPv6.
func podIPs(res *gocni.Result) []string {
	if res == nil {
		return nil
	}
	pick := func(cfg *gocni.Config) []string {
		var v4, v6 []string
		for _, c := range cfg.IPConfigs {
			if c.IP == nil || c.IP.IsLoopback() {
				continue
			}
			if c.IP.To4() != nil {
				v4 = append(v4, c.IP.String())
			} else {
				v6 = append(v6, c.IP.String())
			}
		}
		return append(v4, v6...)
	}
	if cfg, ok := res.Interfaces["eth0"]; ok {
		if ips := pick(cfg); len(ips) > 0 {
			return ips
		}
	}
	names := make([]string, 0, len(res.Interfaces))
	for name := range res.Interfaces {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if ips := pick(res.Interfaces[name]); len(ips) > 0 {
			return ips
		}
	}
	return nil
}
