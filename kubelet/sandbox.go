package kubelet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podLogDir is the kubelet's layout: <logs>/<namespace>_<name>_<uid>.
func podLogDir(logsRoot, namespace, name, uid string) string {
	return filepath.Join(logsRoot, namespace+"_"+name+"_"+uid)
}

// podVolumesDir holds a pod's emptyDir volumes.
func podDir(root, uid string) string {
	return filepath.Join(root, "pods", uid)
}

// buildSandboxConfig is the CRI sandbox config of pod: the kubelet's
// labels, our marker, DNS, hostname, port mappings and namespaces.
func buildSandboxConfig(pod *v1.Pod, hash, manifestFile string, attempt uint32, logsRoot string, dns *runtimeapi.DNSConfig) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[labelPodName] = pod.Name
	labels[labelPodNamespace] = pod.Namespace
	labels[labelPodUID] = string(pod.UID)
	labels[labelManagedBy] = managedByValue

	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	annotations[annotationConfigSource] = "file"
	annotations[annotationConfigHash] = hash
	annotations[annotationManifestFile] = manifestFile
	annotations[annotationGracePeriod] = strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10)

	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		LogDirectory: podLogDir(logsRoot, pod.Namespace, pod.Name, string(pod.UID)),
		DnsConfig:    dns,
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: podNamespaces(pod),
				Privileged:       podPrivileged(pod),
			},
		},
	}
	if !pod.Spec.HostNetwork {
		cfg.Hostname = podHostname(pod)
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if sc.RunAsGroup != nil {
			cfg.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
		}
		cfg.Linux.SecurityContext.SupplementalGroups = sc.SupplementalGroups
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{
				Protocol:      protocol(p.Protocol),
				ContainerPort: p.ContainerPort,
				HostPort:      p.HostPort,
				HostIp:        p.HostIP,
			})
		}
	}
	return cfg
}

// podNamespaces are the pod's namespace modes. The user namespace is the
// host's, said explicitly as the kubelet does (hostUsers: false is refused
// by validation).
func podNamespaces(pod *v1.Pod) *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network:       namespaceMode(pod.Spec.HostNetwork),
		Pid:           podPIDMode(pod),
		Ipc:           namespaceMode(pod.Spec.HostIPC),
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE},
	}
}

func namespaceMode(host bool) runtimeapi.NamespaceMode {
	if host {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

func podPIDMode(pod *v1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostPID {
		return runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		return runtimeapi.NamespaceMode_POD
	}
	return runtimeapi.NamespaceMode_CONTAINER
}

func podPrivileged(pod *v1.Pod) bool {
	for _, c := range append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			return true
		}
	}
	return false
}

// podHostname is spec.hostname, else the pod name cut to a DNS label.
func podHostname(pod *v1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func protocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

// dnsConfig is the pod's resolver: with no cluster DNS, ClusterFirst falls
// back to the host's resolv.conf (what the kubelet does without
// --cluster-dns); None uses only spec.dnsConfig, which is appended otherwise.
func dnsConfig(pod *v1.Pod, resolvConf string) (*runtimeapi.DNSConfig, error) {
	cfg := &runtimeapi.DNSConfig{}
	if pod.Spec.DNSPolicy != v1.DNSNone {
		host, err := parseResolvConf(resolvConf)
		if err != nil {
			return nil, err
		}
		cfg = host
	}
	if d := pod.Spec.DNSConfig; d != nil {
		cfg.Servers = append(cfg.Servers, d.Nameservers...)
		cfg.Searches = append(cfg.Searches, d.Searches...)
		for _, o := range d.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			cfg.Options = append(cfg.Options, opt)
		}
	}
	return cfg, nil
}

// parseResolvConf reads nameserver, search and options lines. A missing
// file means no resolver settings.
func parseResolvConf(path string) (*runtimeapi.DNSConfig, error) {
	cfg := &runtimeapi.DNSConfig{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read resolver config: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, fields[1])
		case "search", "domain":
			cfg.Searches = append(cfg.Searches, fields[1:]...)
		case "options":
			cfg.Options = append(cfg.Options, fields[1:]...)
		}
	}
	return cfg, s.Err()
}

// gracePeriodOf reads a sandbox's grace period annotation (30s if absent).
func gracePeriodOf(annotations map[string]string) int64 {
	if g, err := strconv.ParseInt(annotations[annotationGracePeriod], 10, 64); err == nil && g >= 0 {
		return g
	}
	return defaultGracePeriodSeconds
}

// killPod stops every running container of the given sandboxes with the
// grace period (in parallel, as the kubelet does), removes them, then stops
// and removes the sandboxes, which releases their network.
func (a *Agent) killPod(ctx context.Context, sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) error {
	grace := int64(defaultGracePeriodSeconds)
	if len(sandboxes) > 0 {
		grace = gracePeriodOf(sandboxes[len(sandboxes)-1].Annotations)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(containers))
	for i, c := range containers {
		if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.rt.StopContainer(ctx, c.Id, grace); err != nil {
				errs[i] = fmt.Errorf("stop container %s (%s): %w", c.Metadata.GetName(), shortID(c.Id), err)
			}
		}()
	}
	wg.Wait()
	// RemovePodSandbox removes the containers too, but only those in its
	// sandbox; removing them first also covers containers whose sandbox is
	// already gone.
	for _, c := range containers {
		if err := a.rt.RemoveContainer(ctx, c.Id); err != nil && status.Code(err) != codes.NotFound {
			errs = append(errs, fmt.Errorf("remove container %s (%s): %w", c.Metadata.GetName(), shortID(c.Id), err))
		}
	}
	for _, s := range sandboxes {
		if err := a.rt.StopPodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", shortID(s.Id), err))
			continue
		}
		if err := a.rt.RemovePodSandbox(ctx, s.Id); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", shortID(s.Id), err))
		}
	}
	return errors.Join(errs...)
}

func shortID(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}
