package containers

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodManifest turns run options into the equivalent Kubernetes Pod, ready
// for a static-pod manifest folder (kubelet-lite's or the kubelet's). What
// a Pod cannot say comes back as warnings.
func PodManifest(opts CreateOptions) (*corev1.Pod, []string, error) {
	var warnings []string
	name := opts.Name
	if name == "" {
		name = "kctr-" + shortID(newID())[:8]
	}
	podName := dnsLabel(name, "kctr")
	container := corev1.Container{
		Name:       podName,
		Image:      opts.Image,
		Command:    opts.Entrypoint,
		Args:       opts.Args,
		WorkingDir: opts.WorkingDir,
		TTY:        opts.TTY,
	}
	for _, kv := range opts.Env {
		key, value, _ := strings.Cut(kv, "=")
		container.Env = append(container.Env, corev1.EnvVar{Name: key, Value: value})
	}
	switch opts.Pull {
	case PullAlways:
		container.ImagePullPolicy = corev1.PullAlways
	case PullNever:
		container.ImagePullPolicy = corev1.PullNever
	case PullMissing:
		container.ImagePullPolicy = corev1.PullIfNotPresent
	}
	for _, p := range opts.Ports {
		container.Ports = append(container.Ports, corev1.ContainerPort{
			ContainerPort: p.ContainerPort,
			HostPort:      p.HostPort,
			HostIP:        p.HostIP,
			Protocol:      corev1.Protocol(strings.ToUpper(p.Protocol)),
		})
	}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: "default", Labels: opts.Labels},
	}
	for i, m := range opts.Mounts {
		volume := fmt.Sprintf("%s-%d", dnsLabel(filepath.Base(m.Source), "volume"), i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         volume,
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: m.Source}},
		})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: volume, MountPath: m.Destination, ReadOnly: m.ReadOnly})
	}
	limits := corev1.ResourceList{}
	if opts.Resources.CPUs > 0 {
		limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(opts.Resources.CPUs*1000), resource.DecimalSI)
	}
	if opts.Resources.Memory > 0 {
		limits[corev1.ResourceMemory] = *resource.NewQuantity(opts.Resources.Memory, resource.BinarySI)
	}
	if len(limits) > 0 {
		container.Resources.Limits = limits
	}
	if opts.Resources.PidsLimit > 0 {
		warnings = append(warnings, "--pids-limit has no Pod field (the kubelet sets a node-wide pod PID limit); left out")
	}
	security, err := podSecurityContext(opts)
	if err != nil {
		return nil, nil, err
	}
	container.SecurityContext = security
	switch opts.Restart {
	case "", "no":
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	case "always", "unless-stopped":
		pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	default:
		pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		if strings.Contains(opts.Restart, ":") {
			warnings = append(warnings, "a Pod cannot limit restarts: on-failure:N becomes OnFailure")
		}
	}
	switch opts.Network {
	case NetworkHost:
		pod.Spec.HostNetwork = true
	case NetworkNone:
		warnings = append(warnings, "--net none has no Pod equivalent; the pod gets the cluster network")
	}
	if opts.Hostname != "" {
		pod.Spec.Hostname = opts.Hostname
	}
	pod.Spec.Containers = []corev1.Container{container}
	return pod, warnings, nil
}

func podSecurityContext(opts CreateOptions) (*corev1.SecurityContext, error) {
	sec := opts.Security
	out := &corev1.SecurityContext{}
	set := false
	if sec.Privileged {
		privileged := true
		out.Privileged, set = &privileged, true
	}
	if sec.ReadOnly {
		readOnly := true
		out.ReadOnlyRootFilesystem, set = &readOnly, true
	}
	if len(sec.CapAdd) > 0 || len(sec.CapDrop) > 0 {
		caps := &corev1.Capabilities{}
		for _, c := range normalizeCapabilities(sec.CapAdd) {
			caps.Add = append(caps.Add, corev1.Capability(strings.TrimPrefix(c, "CAP_")))
		}
		for _, c := range normalizeCapabilities(sec.CapDrop) {
			caps.Drop = append(caps.Drop, corev1.Capability(strings.TrimPrefix(c, "CAP_")))
		}
		out.Capabilities, set = caps, true
	}
	if opts.User != "" {
		userPart, groupPart, hasGroup := strings.Cut(opts.User, ":")
		uid, err := strconv.ParseInt(userPart, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--user %q: a Pod needs a numeric uid (runAsUser), not a name", opts.User)
		}
		out.RunAsUser, set = &uid, true
		if hasGroup {
			gid, err := strconv.ParseInt(groupPart, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("--user %q: a Pod needs a numeric gid (runAsGroup), not a name", opts.User)
			}
			out.RunAsGroup = &gid
		}
	}
	if !set {
		return nil, nil
	}
	return out, nil
}

// dnsLabel makes s a valid Kubernetes name: lower case letters, digits and
// dashes, starting and ending with an alphanumeric; fallback if nothing is
// left.
func dnsLabel(s, fallback string) string {
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, s)
	mapped = strings.Trim(mapped, "-")
	if len(mapped) > 63 {
		mapped = strings.Trim(mapped[:63], "-")
	}
	if mapped == "" {
		return fallback
	}
	return mapped
}
