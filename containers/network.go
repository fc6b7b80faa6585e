package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kctr/kctr/network"
)

// Network modes of `kctr run --net`.
const (
	NetworkBridge = "bridge"
	NetworkHost   = "host"
	NetworkNone   = "none"
)

// Labels that remember a container's network, so rm can undo it later.
const (
	LabelNetNS = "kctr/netns"
	LabelPorts = "kctr/ports"
	LabelIP    = "kctr/ip"
)

// NetworkOptions say where kctr's bridge network comes from.
type NetworkOptions struct {
	// CNIBinDirs hold the plugins; Debian installs them in /usr/lib/cni.
	CNIBinDirs []string
	// ConfDir holds kctr's network config. When it holds none, a bridge
	// network is written there on first use.
	ConfDir string
	// BridgeName and Subnet shape that default network.
	BridgeName string
	Subnet     string
	// NetNSDir holds the containers' network namespaces.
	NetNSDir string
}

// Defaults of the bridge network kctr makes for itself.
const (
	DefaultCNIConfDir = "/etc/kctr/cni/net.d"
	DefaultBridgeName = "kctr0"
	DefaultSubnet     = "10.4.0.0/24"
	DefaultNetNSDir   = "/run/kctr/netns"
	defaultConfFile   = "kctr-bridge.conflist"
)

// bridgeNetworking attaches containers to the CNI network in ConfDir.
type bridgeNetworking struct {
	opts    NetworkOptions
	once    sync.Once
	manager *network.Manager
	err     error
}

func newBridgeNetworking(opts NetworkOptions) *bridgeNetworking {
	if len(opts.CNIBinDirs) == 0 {
		opts.CNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if opts.ConfDir == "" {
		opts.ConfDir = DefaultCNIConfDir
	}
	if opts.BridgeName == "" {
		opts.BridgeName = DefaultBridgeName
	}
	if opts.Subnet == "" {
		opts.Subnet = DefaultSubnet
	}
	if opts.NetNSDir == "" {
		opts.NetNSDir = DefaultNetNSDir
	}
	return &bridgeNetworking{opts: opts}
}

func (b *bridgeNetworking) cni() (*network.Manager, error) {
	b.once.Do(func() {
		if b.err = b.ensureConfig(); b.err != nil {
			return
		}
		b.manager, b.err = network.NewManager(network.Options{BinDirs: b.opts.CNIBinDirs, ConfDir: b.opts.ConfDir})
	})
	return b.manager, b.err
}

// ensureConfig writes the default bridge network unless the conf dir
// already has a network config, which then wins (users may bring their own).
func (b *bridgeNetworking) ensureConfig() error {
	existing, _ := filepath.Glob(filepath.Join(b.opts.ConfDir, "*.conf*"))
	if len(existing) > 0 {
		return nil
	}
	if err := os.MkdirAll(b.opts.ConfDir, 0o755); err != nil {
		return fmt.Errorf("create CNI conf dir: %w", err)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       b.networkName(),
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      b.opts.BridgeName,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": b.opts.Subnet}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "firewall"},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.opts.ConfDir, defaultConfFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	return os.Rename(tmp, path)
}

// networkName is also the host-local IPAM directory name, so a bridge of
// another name gets its own.
func (b *bridgeNetworking) networkName() string {
	if b.opts.BridgeName == DefaultBridgeName {
		return "kctr-bridge"
	}
	return "kctr-" + b.opts.BridgeName
}

// pendingAttach is a CNI ADD running while the container and its task
// are made (network.PendingAttach). It must be finished before the task
// starts.
type pendingAttach struct {
	id     string
	nsPath string
	ports  []PortMapping
	cni    *network.PendingAttach
}

// startAttach makes the network namespace for id and starts CNI ADD in it.
func (b *bridgeNetworking) startAttach(ctx context.Context, id string, ports []PortMapping) (*pendingAttach, error) {
	manager, err := b.cni()
	if err != nil {
		return nil, err
	}
	nsPath, err := network.NewNamespace(b.opts.NetNSDir)
	if err != nil {
		return nil, err
	}
	return &pendingAttach{id: id, nsPath: nsPath, ports: ports,
		cni: manager.StartAttach(ctx, id, nsPath, network.AttachOptions{PortMappings: toNetworkPorts(ports)})}, nil
}

// wait returns the container's IP once CNI ADD is done. A failed ADD has
// released what it held; the namespace is ours to remove.
func (p *pendingAttach) wait() (string, error) {
	result, err := p.cni.Wait()
	if err != nil {
		_ = network.RemoveNamespace(p.nsPath)
		return "", fmt.Errorf("attach to the bridge network: %w", err)
	}
	if len(result.IPs) == 0 {
		return "", nil
	}
	return result.IPs[0], nil
}

// labels record the network on the container, so rm can undo it later.
func (p *pendingAttach) labels() map[string]string {
	ports, _ := json.Marshal(p.ports)
	return map[string]string{LabelNetNS: p.nsPath, LabelPorts: string(ports)}
}

// abort undoes an attach whose container could not be made.
func (b *bridgeNetworking) abort(ctx context.Context, p *pendingAttach) {
	if _, err := p.wait(); err != nil {
		return
	}
	_ = b.detach(ctx, p.id, p.labels())
}

// detach undoes attach from what the labels remember.
func (b *bridgeNetworking) detach(ctx context.Context, id string, labels map[string]string) error {
	nsPath := labels[LabelNetNS]
	if nsPath == "" {
		return nil
	}
	var ports []PortMapping
	if raw := labels[LabelPorts]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &ports); err != nil {
			return fmt.Errorf("read port mappings of %s: %w", shortID(id), err)
		}
	}
	manager, err := b.cni()
	if err != nil {
		return err
	}
	if err := manager.Detach(ctx, id, nsPath, network.AttachOptions{PortMappings: toNetworkPorts(ports)}); err != nil {
		return err
	}
	return network.RemoveNamespace(nsPath)
}

func toNetworkPorts(ports []PortMapping) []network.PortMapping {
	out := make([]network.PortMapping, 0, len(ports))
	for _, p := range ports {
		out = append(out, network.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP})
	}
	return out
}

// withNetworkFiles writes /etc/hosts, /etc/hostname and /etc/resolv.conf
// for the container into dir and bind-mounts them read-write, as Docker
// does, so the container's name resolves to its own IP.
func withNetworkFiles(dir, hostname, ip string) (oci.SpecOpts, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	resolv, err := containerResolvConf("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	files := map[string]string{"hosts": hostsFile(hostname, ip), "hostname": hostname + "\n", "resolv.conf": resolv}
	var mounts []specs.Mount
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: path, Options: []string{"rbind", "rw"}})
	}
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		return oci.WithMounts(mounts)(ctx, client, c, s)
	}, nil
}

func hostsFile(hostname, ip string) string {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if ip != "" {
		hosts += ip + "\t" + hostname + "\n"
	}
	return hosts
}

// writeHostsFile puts the container's own address into its /etc/hosts once
// CNI has given it one.
func writeHostsFile(dir, hostname, ip string) error {
	return os.WriteFile(filepath.Join(dir, "hosts"), []byte(hostsFile(hostname, ip)), 0o644)
}

// containerResolvConf is the host's resolv.conf without loopback name
// servers, which mean nothing inside another network namespace.
func containerResolvConf(path string) (string, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" && (strings.HasPrefix(fields[1], "127.") || fields[1] == "::1") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), nil
}

// ParseNetworkMode checks --net.
func ParseNetworkMode(s string) (string, error) {
	switch s {
	case "", NetworkBridge:
		return NetworkBridge, nil
	case NetworkHost, NetworkNone:
		return s, nil
	}
	return "", fmt.Errorf("invalid network %q (want bridge, host or none): %w", s, errdefs.ErrInvalidArgument)
}
