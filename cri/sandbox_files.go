package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Files every container of a pod sees, kept in the sandbox dir.
const (
	hostnameFile = "hostname"
	hostsFile    = "hosts"
	resolvFile   = "resolv.conf"
)

// writeSandboxFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf
// for the pod. Host-network pods get the host's hosts file.
func writeSandboxFiles(dir string, cfg *runtimeapi.PodSandboxConfig, hostNetwork bool, ips []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create sandbox dir: %w", err)
	}
	// /etc/hostname holds the pod's hostname even in host-network pods
	// (whose UTS namespace, and so `hostname`, is the host's).
	hostname := cfg.GetHostname()
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("get hostname: %w", err)
		}
		hostname = h
	}
	if err := os.WriteFile(filepath.Join(dir, hostnameFile), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	var hosts []byte
	if hostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		hosts = b
	} else {
		hosts = []byte(hostsContent(hostname, ips))
	}
	if err := os.WriteFile(filepath.Join(dir, hostsFile), hosts, 0o644); err != nil {
		return err
	}
	resolv, err := resolvContent(cfg.GetDnsConfig())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, resolvFile), resolv, 0o644)
}

// hostsContent is the kubelet's managed /etc/hosts for a pod.
func hostsContent(hostname string, ips []string) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (kcrid).\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.String()
}

// resolvContent renders the DNS config; without one the host's
// resolv.conf is used.
func resolvContent(dns *runtimeapi.DNSConfig) ([]byte, error) {
	if dns == nil || len(dns.Servers)+len(dns.Searches)+len(dns.Options) == 0 {
		b, err := os.ReadFile("/etc/resolv.conf")
		if os.IsNotExist(err) {
			return nil, nil
		}
		return b, err
	}
	var b strings.Builder
	if len(dns.Searches) > 0 {
		b.WriteString("search " + strings.Join(dns.Searches, " ") + "\n")
	}
	for _, s := range dns.Servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(dns.Options) > 0 {
		b.WriteString("options " + strings.Join(dns.Options, " ") + "\n")
	}
	return []byte(b.String()), nil
}
