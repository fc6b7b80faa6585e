package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerContext is what a container's config depends on besides its
// spec: where it runs and which instance it is.
type containerContext struct {
	pod          *v1.Pod
	podIP        string
	hostIP       string
	restartCount int
	backoff      time.Duration
	init         bool
	rootDir      string // for emptyDir volumes
}

// buildContainerConfig turns a v1.Container into a CRI ContainerConfig the
// way the kubelet does: labels, annotations, log path, command and args,
// env (with fieldRef and $(VAR) expansion), mounts, ports, resources and
// security context.
func buildContainerConfig(c *v1.Container, cc containerContext) (*runtimeapi.ContainerConfig, error) {
	pod := cc.pod
	env := containerEnv(c, cc)
	envMap := map[string]string{}
	for _, e := range env {
		envMap[e.Key] = string(e.Value)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(cc.restartCount)},
		Image:      &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		Command:    expandAll(c.Command, envMap),
		Args:       expandAll(c.Args, envMap),
		WorkingDir: c.WorkingDir,
		Envs:       env,
		Labels: map[string]string{
			labelPodName:       pod.Name,
			labelPodNamespace:  pod.Namespace,
			labelPodUID:        string(pod.UID),
			labelContainerName: c.Name,
			labelManagedBy:     managedByValue,
		},
		Annotations: map[string]string{
			annotationContainerHash:          containerHash(c),
			annotationRestartCount:           strconv.Itoa(cc.restartCount),
			annotationTerminationMessagePath: c.TerminationMessagePath,
			annotationGracePeriod:            strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10),
			annotationBackoff:                cc.backoff.String(),
		},
		LogPath:   filepath.Join(c.Name, strconv.Itoa(cc.restartCount)+".log"),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		Tty:       c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c),
			SecurityContext: securityContext(pod, c),
		},
	}
	if cc.init {
		cfg.Annotations[annotationInit] = "true"
	}
	mounts, err := containerMounts(pod, c, cc.rootDir)
	if err != nil {
		return nil, err
	}
	cfg.Mounts = mounts
	return cfg, nil
}

// containerHash identifies a container spec (the kubelet's
// io.kubernetes.container.hash); it is informative: any manifest change
// recreates the whole pod.
func containerHash(c *v1.Container) string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// containerEnv resolves env in order; each value may refer to earlier ones
// with $(NAME), as in the kubelet.
func containerEnv(c *v1.Container, cc containerContext) []*runtimeapi.KeyValue {
	var out []*runtimeapi.KeyValue
	seen := map[string]string{}
	for _, e := range c.Env {
		value := expand(e.Value, seen)
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			value = fieldValue(e.ValueFrom.FieldRef.FieldPath, cc)
		}
		seen[e.Name] = value
		out = append(out, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(value)})
	}
	return out
}

func fieldValue(path string, cc containerContext) string {
	switch path {
	case "metadata.name":
		return cc.pod.Name
	case "metadata.namespace":
		return cc.pod.Namespace
	case "metadata.uid":
		return string(cc.pod.UID)
	case "spec.nodeName":
		return cc.pod.Spec.NodeName
	case "status.podIP":
		return cc.podIP
	case "status.hostIP":
		return cc.hostIP
	}
	return ""
}

func expandAll(in []string, env map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, env)
	}
	return out
}

// expand replaces $(NAME) with env[NAME] when defined; $$ escapes a $, and
// unknown references stay as written (the kubelet's rules).
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// containerMounts maps volumeMounts onto hostPath and emptyDir volumes.
func containerMounts(pod *v1.Pod, c *v1.Container, rootDir string) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	for _, m := range c.VolumeMounts {
		var host string
		for _, vol := range pod.Spec.Volumes {
			if vol.Name != m.Name {
				continue
			}
			switch {
			case vol.HostPath != nil:
				host = vol.HostPath.Path
			case vol.EmptyDir != nil:
				host = emptyDirPath(rootDir, string(pod.UID), vol.Name)
			}
		}
		if host == "" {
			return nil, fmt.Errorf("container %q: volume mount %q: no such volume", c.Name, m.Name)
		}
		if m.SubPath != "" {
			host = filepath.Join(host, filepath.Clean("/"+m.SubPath))
		}
		mount := &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly}
		if m.MountPropagation != nil {
			switch *m.MountPropagation {
			case v1.MountPropagationHostToContainer:
				mount.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case v1.MountPropagationBidirectional:
				mount.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		out = append(out, mount)
	}
	return out, nil
}

func emptyDirPath(rootDir, uid, volume string) string {
	return filepath.Join(podDir(rootDir, uid), "volumes", "kubernetes.io~empty-dir", volume)
}

// prepareVolumes creates emptyDir directories and hostPath directories of
// type DirectoryOrCreate, and checks hostPath types that must exist.
func prepareVolumes(pod *v1.Pod, rootDir string) error {
	for _, vol := range pod.Spec.Volumes {
		switch {
		case vol.EmptyDir != nil:
			if err := os.MkdirAll(emptyDirPath(rootDir, string(pod.UID), vol.Name), 0o777); err != nil {
				return fmt.Errorf("volume %q: %w", vol.Name, err)
			}
		case vol.HostPath != nil:
			if err := prepareHostPath(vol.Name, vol.HostPath); err != nil {
				return err
			}
		}
	}
	return nil
}

func prepareHostPath(name string, hp *v1.HostPathVolumeSource) error {
	typ := v1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	st, err := os.Stat(hp.Path)
	switch typ {
	case v1.HostPathDirectoryOrCreate:
		if err != nil {
			if mkErr := os.MkdirAll(hp.Path, 0o755); mkErr != nil {
				return fmt.Errorf("volume %q: create %s: %w", name, hp.Path, mkErr)
			}
		}
	case v1.HostPathFileOrCreate:
		if err != nil {
			if mkErr := os.MkdirAll(filepath.Dir(hp.Path), 0o755); mkErr != nil {
				return fmt.Errorf("volume %q: %w", name, mkErr)
			}
			f, ferr := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if ferr != nil {
				return fmt.Errorf("volume %q: create %s: %w", name, hp.Path, ferr)
			}
			f.Close()
		}
	case v1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return fmt.Errorf("volume %q: hostPath %s is not a directory", name, hp.Path)
		}
	case v1.HostPathFile:
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("volume %q: hostPath %s is not a file", name, hp.Path)
		}
	case v1.HostPathSocket:
		if err != nil || st.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("volume %q: hostPath %s is not a socket", name, hp.Path)
		}
	}
	return nil
}

// milliCPUToShares is the kubelet's conversion (2 shares minimum).
func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return 2
	}
	shares := milli * 1024 / 1000
	if shares < 2 {
		return 2
	}
	return shares
}

// linuxResources maps requests and limits: cpu request → shares, cpu limit
// → quota over a 100ms period, memory limit → memory limit. A limit
// without a request implies the request, as API defaulting would.
func linuxResources(c *v1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuRequest, cpuLimit := c.Resources.Requests.Cpu(), c.Resources.Limits.Cpu()
	switch {
	case !cpuRequest.IsZero():
		r.CpuShares = milliCPUToShares(cpuRequest.MilliValue())
	case !cpuLimit.IsZero():
		r.CpuShares = milliCPUToShares(cpuLimit.MilliValue())
	default:
		r.CpuShares = 2
	}
	if !cpuLimit.IsZero() {
		const period = 100000
		r.CpuPeriod = period
		r.CpuQuota = max(cpuLimit.MilliValue()*period/1000, 1000)
	}
	if mem := c.Resources.Limits.Memory(); !mem.IsZero() {
		r.MemoryLimitInBytes = mem.Value()
	}
	return r
}

// securityContext merges the pod's and the container's settings, the
// container's winning.
func securityContext(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: podNamespaces(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = psc.SupplementalGroups
	}
	csc := c.SecurityContext
	if csc == nil {
		return sc
	}
	if csc.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
	}
	if csc.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
	}
	if csc.Privileged != nil {
		sc.Privileged = *csc.Privileged
	}
	if csc.ReadOnlyRootFilesystem != nil {
		sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		sc.NoNewPrivs = !*csc.AllowPrivilegeEscalation
	}
	if caps := csc.Capabilities; caps != nil {
		sc.Capabilities = &runtimeapi.Capability{}
		for _, cp := range caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, capName(cp))
		}
		for _, cp := range caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, capName(cp))
		}
	}
	return sc
}

// capName accepts NET_ADMIN and CAP_NET_ADMIN alike, as runtimes do with
// the kubelet's plain names; ALL stays ALL.
func capName(c v1.Capability) string {
	return strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
}

// startContainer pulls the image, creates the log directory, creates and
// starts one container instance in the pod's sandbox.
func (a *Agent) startContainer(ctx context.Context, ps *podSync, c *v1.Container, restartCount int, backoff time.Duration, init bool) (string, error) {
	if err := a.puller.ensureImage(ctx, c, ps.sandboxConfig); err != nil {
		return "", err
	}
	cfg, err := buildContainerConfig(c, containerContext{
		pod: ps.pod, podIP: ps.podIP, hostIP: a.cfg.NodeIP, restartCount: restartCount, backoff: backoff, init: init, rootDir: a.cfg.RootDir,
	})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(ps.sandboxConfig.LogDirectory, c.Name), 0o755); err != nil {
		return "", fmt.Errorf("log dir of container %q: %w", c.Name, err)
	}
	id, err := a.rt.CreateContainer(ctx, ps.sandboxID, cfg, ps.sandboxConfig)
	if err != nil {
		return "", fmt.Errorf("create container %q in pod %s: %w", c.Name, ps.fullName(), err)
	}
	if err := a.rt.StartContainer(ctx, id); err != nil {
		return id, fmt.Errorf("start container %q (%s) in pod %s: %w", c.Name, shortID(id), ps.fullName(), err)
	}
	a.log.Info("container started", "pod", ps.fullName(), "container", c.Name, "id", shortID(id), "restartCount", restartCount)
	return id, nil
}

// runtimeContainer is what kubelet-lite knows of one container instance,
// read back from the runtime (labels, annotations and status).
type runtimeContainer struct {
	id           string
	name         string
	init         bool
	restartCount int
	backoff      time.Duration
	state        runtimeapi.ContainerState
	createdAt    time.Time
	startedAt    time.Time
	finishedAt   time.Time
	exitCode     int32
	reason       string
	message      string
	image        string
	imageRef     string
}

// fromListed fills what ListContainers tells.
func fromListed(c *runtimeapi.Container) *runtimeContainer {
	rc := &runtimeContainer{
		id:        c.Id,
		name:      c.Labels[labelContainerName],
		init:      c.Annotations[annotationInit] == "true",
		state:     c.State,
		createdAt: time.Unix(0, c.CreatedAt),
		image:     c.Image.GetImage(),
		imageRef:  c.ImageRef,
	}
	if rc.name == "" {
		rc.name = c.Metadata.GetName()
	}
	rc.restartCount, _ = strconv.Atoi(c.Annotations[annotationRestartCount])
	rc.backoff, _ = time.ParseDuration(c.Annotations[annotationBackoff])
	return rc
}

// addStatus fills what ContainerStatus tells (times, exit code, reason).
func (rc *runtimeContainer) addStatus(st *runtimeapi.ContainerStatus) {
	rc.state = st.State
	if st.StartedAt > 0 {
		rc.startedAt = time.Unix(0, st.StartedAt)
	}
	if st.FinishedAt > 0 {
		rc.finishedAt = time.Unix(0, st.FinishedAt)
	}
	rc.exitCode = st.ExitCode
	rc.reason = st.Reason
	rc.message = st.Message
	if st.Image.GetImage() != "" {
		rc.image = st.Image.GetImage()
	}
	if st.ImageRef != "" {
		rc.imageRef = st.ImageRef
	}
}

// exited reports whether the instance is done: exited, or never got
// started (created or unknown), which counts as a failure.
func (rc *runtimeContainer) exited() bool {
	return rc.state != runtimeapi.ContainerState_CONTAINER_RUNNING
}

// effectiveExitCode is the exit code for restart decisions: an instance
// that never ran failed.
func (rc *runtimeContainer) effectiveExitCode() int32 {
	if rc.state == runtimeapi.ContainerState_CONTAINER_EXITED {
		return rc.exitCode
	}
	return -1
}
