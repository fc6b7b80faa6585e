package kubelet

import (
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validatePod checks what kubelet-lite relies on: names, images, ports,
// restart policy, volumes and their references, env references and probes.
// It also refuses what kubelet-lite would silently ignore (volume types and
// sidecar init containers it does not implement), so a manifest never runs
// differently from what it says.
func validatePod(pod *v1.Pod) field.ErrorList {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	if pod.Name == "" {
		errs = append(errs, field.Required(meta.Child("name"), ""))
	}
	for _, msg := range validation.IsDNS1123Subdomain(pod.Name) {
		if pod.Name != "" {
			errs = append(errs, field.Invalid(meta.Child("name"), pod.Name, msg))
		}
	}
	if pod.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(pod.Namespace) {
			errs = append(errs, field.Invalid(meta.Child("namespace"), pod.Namespace, msg))
		}
	}

	spec := field.NewPath("spec")
	switch pod.Spec.RestartPolicy {
	case "", v1.RestartPolicyAlways, v1.RestartPolicyOnFailure, v1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(spec.Child("restartPolicy"), pod.Spec.RestartPolicy,
			[]string{string(v1.RestartPolicyAlways), string(v1.RestartPolicyOnFailure), string(v1.RestartPolicyNever)}))
	}
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		errs = append(errs, field.Forbidden(spec.Child("hostUsers"), "user namespaces are not supported by kubelet-lite"))
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		errs = append(errs, field.Invalid(spec.Child("terminationGracePeriodSeconds"), *g, "must be >= 0"))
	}

	volumes := sets.New[string]()
	for i, vol := range pod.Spec.Volumes {
		p := spec.Child("volumes").Index(i)
		if vol.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else if volumes.Has(vol.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), vol.Name))
		}
		for _, msg := range validation.IsDNS1123Label(vol.Name) {
			if vol.Name != "" {
				errs = append(errs, field.Invalid(p.Child("name"), vol.Name, msg))
			}
		}
		volumes.Insert(vol.Name)
		switch {
		case vol.HostPath != nil && vol.EmptyDir == nil:
			if !path.IsAbs(vol.HostPath.Path) {
				errs = append(errs, field.Invalid(p.Child("hostPath", "path"), vol.HostPath.Path, "must be an absolute path"))
			}
		case vol.EmptyDir != nil && vol.HostPath == nil:
		default:
			errs = append(errs, field.Invalid(p, vol.Name, "kubelet-lite supports exactly one of hostPath or emptyDir"))
		}
	}

	names := sets.New[string]()
	for i := range pod.Spec.InitContainers {
		p := spec.Child("initContainers").Index(i)
		c := &pod.Spec.InitContainers[i]
		errs = append(errs, validateContainer(c, p, names, volumes)...)
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("restartPolicy"), "sidecar init containers are not supported by kubelet-lite"))
		}
		for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
			if (probe == "livenessProbe" && c.LivenessProbe != nil) || (probe == "readinessProbe" && c.ReadinessProbe != nil) ||
				(probe == "startupProbe" && c.StartupProbe != nil) {
				errs = append(errs, field.Forbidden(p.Child(probe), "may not be set for init containers"))
			}
		}
	}
	if len(pod.Spec.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("containers"), "a pod needs at least one container"))
	}
	for i := range pod.Spec.Containers {
		errs = append(errs, validateContainer(&pod.Spec.Containers[i], spec.Child("containers").Index(i), names, volumes)...)
	}
	return errs
}

// supportedFieldPaths are the env valueFrom.fieldRef paths kubelet-lite fills.
var supportedFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "status.podIP", "status.hostIP"}

func validateContainer(c *v1.Container, p *field.Path, names, volumes sets.Set[string]) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
		}
		if names.Has(c.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names.Insert(c.Name)
	}
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	switch c.ImagePullPolicy {
	case "", v1.PullAlways, v1.PullIfNotPresent, v1.PullNever:
	default:
		errs = append(errs, field.NotSupported(p.Child("imagePullPolicy"), c.ImagePullPolicy,
			[]string{string(v1.PullAlways), string(v1.PullIfNotPresent), string(v1.PullNever)}))
	}
	portNames := sets.New[string]()
	for i, port := range c.Ports {
		pp := p.Child("ports").Index(i)
		for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
			errs = append(errs, field.Invalid(pp.Child("containerPort"), port.ContainerPort, msg))
		}
		if port.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(port.HostPort)) {
				errs = append(errs, field.Invalid(pp.Child("hostPort"), port.HostPort, msg))
			}
		}
		switch port.Protocol {
		case "", v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(pp.Child("protocol"), port.Protocol, []string{"TCP", "UDP", "SCTP"}))
		}
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), port.Name, msg))
			}
			if portNames.Has(port.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			portNames.Insert(port.Name)
		}
	}
	for i, m := range c.VolumeMounts {
		mp := p.Child("volumeMounts").Index(i)
		if !volumes.Has(m.Name) {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if !path.IsAbs(m.MountPath) {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
	}
	for i, e := range c.Env {
		ep := p.Child("env").Index(i)
		for _, msg := range validation.IsEnvVarName(e.Name) {
			errs = append(errs, field.Invalid(ep.Child("name"), e.Name, msg))
		}
		if e.ValueFrom == nil {
			continue
		}
		if e.ValueFrom.FieldRef == nil {
			errs = append(errs, field.Forbidden(ep.Child("valueFrom"), "kubelet-lite supports only fieldRef (there is no API server for secrets or config maps)"))
			continue
		}
		fp := e.ValueFrom.FieldRef.FieldPath
		if !sets.New(supportedFieldPaths...).Has(fp) {
			errs = append(errs, field.NotSupported(ep.Child("valueFrom", "fieldRef", "fieldPath"), fp, supportedFieldPaths))
		}
	}
	if c.Lifecycle != nil {
		errs = append(errs, field.Forbidden(p.Child("lifecycle"), "postStart and preStop hooks are not supported by kubelet-lite"))
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, field.Forbidden(p.Child("envFrom"), "not supported by kubelet-lite (no API server)"))
	}
	probes := []struct {
		name  string
		probe *v1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		if pr.probe != nil {
			errs = append(errs, validateProbe(pr.probe, p.Child(pr.name), c)...)
		}
	}
	return errs
}

func validateProbe(probe *v1.Probe, p *field.Path, c *v1.Container) field.ErrorList {
	var errs field.ErrorList
	handlers := 0
	if probe.Exec != nil {
		handlers++
		if len(probe.Exec.Command) == 0 {
			errs = append(errs, field.Required(p.Child("exec", "command"), ""))
		}
	}
	if probe.HTTPGet != nil {
		handlers++
		errs = append(errs, validateProbePort(probe.HTTPGet.Port, p.Child("httpGet", "port"), c)...)
	}
	if probe.TCPSocket != nil {
		handlers++
		errs = append(errs, validateProbePort(probe.TCPSocket.Port, p.Child("tcpSocket", "port"), c)...)
	}
	if probe.GRPC != nil {
		errs = append(errs, field.Forbidden(p.Child("grpc"), "grpc probes are not supported by kubelet-lite"))
	}
	if handlers != 1 && probe.GRPC == nil {
		errs = append(errs, field.Invalid(p, "", "must have exactly one of exec, httpGet or tcpSocket"))
	}
	for name, v := range map[string]int32{"periodSeconds": probe.PeriodSeconds, "timeoutSeconds": probe.TimeoutSeconds,
		"successThreshold": probe.SuccessThreshold, "failureThreshold": probe.FailureThreshold, "initialDelaySeconds": probe.InitialDelaySeconds} {
		if v < 0 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be >= 0"))
		}
	}
	return errs
}

func validateProbePort(port intstr.IntOrString, p *field.Path, c *v1.Container) field.ErrorList {
	if _, err := resolvePort(port, c); err != nil {
		return field.ErrorList{field.Invalid(p, port.String(), err.Error())}
	}
	return nil
}
