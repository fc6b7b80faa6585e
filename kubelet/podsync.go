package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podSync is one pass of a pod worker over its pod: what the runtime has,
// what was done and what the status should say.
type podSync struct {
	pod      *v1.Pod
	manifest *Manifest

	sandbox       *runtimeapi.PodSandbox // the current (latest) sandbox
	sandboxID     string
	sandboxReady  bool
	sandboxConfig *runtimeapi.PodSandboxConfig
	podIP         string

	// latest is the newest instance of each container (by name) in the
	// current sandbox; older holds the rest.
	latest map[string]*runtimeContainer
	older  []*runtimeContainer
	// previous is the instance before the latest, per name, with its
	// status (the container status's lastState).
	previous map[string]*runtimeContainer
	// waiting explains containers that are not running and should be.
	waiting map[string]waitingState
	// initDone: every init container succeeded (or app containers exist).
	initDone bool
	// carried are the last instances of a sandbox just replaced: the new
	// instances continue their restart counts.
	carried map[string]*runtimeContainer
	// retry asks the worker to come back after this long (0: on events).
	retry time.Duration
	// problem is a pod-level error for the status message.
	problem string
}

type waitingState struct{ reason, message string }

func (ps *podSync) fullName() string { return ps.pod.Namespace + "/" + ps.pod.Name }

func (ps *podSync) retryIn(d time.Duration) {
	if d > 0 && (ps.retry == 0 || d < ps.retry) {
		ps.retry = d
	}
}

// syncPod drives one desired pod towards its spec: sandbox, init
// containers in order, then containers, restarting with back-off, killing
// containers whose liveness probe failed, and stopping the sandbox when the
// pod has finished for good. It returns the status to publish.
func (a *Agent) syncPod(ctx context.Context, m *Manifest, sandboxes []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) (*podSync, error) {
	ps := &podSync{pod: m.Pod, manifest: m, latest: map[string]*runtimeContainer{}, waiting: map[string]waitingState{}}
	sort.Slice(sandboxes, func(i, j int) bool { return sandboxes[i].CreatedAt < sandboxes[j].CreatedAt })
	if n := len(sandboxes); n > 0 {
		ps.sandbox = sandboxes[n-1]
		ps.sandboxID = ps.sandbox.Id
		ps.sandboxReady = ps.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
	}
	a.groupContainers(ctx, ps, containers)

	if !ps.sandboxReady {
		if ps.sandbox != nil && a.finished(ps) {
			// Finished for good (Never/OnFailure): keep what is there for
			// its status, as the kubelet does.
			ps.initDone = initComplete(ps)
			return ps, nil
		}
		if err := a.recreateSandbox(ctx, ps, sandboxes, containers); err != nil {
			ps.problem = err.Error()
			ps.retryIn(a.cfg.Backoff.Initial)
			return ps, err
		}
	} else {
		attempt := uint32(0)
		if ps.sandbox.Metadata != nil {
			attempt = ps.sandbox.Metadata.Attempt
		}
		dns, err := dnsConfig(ps.pod, a.cfg.ResolvConf)
		if err != nil {
			return ps, err
		}
		ps.sandboxConfig = buildSandboxConfig(ps.pod, m.Hash, m.File, attempt, a.cfg.PodLogsDir, dns)
		st, err := a.rt.PodSandboxStatus(ctx, ps.sandboxID, false)
		if err != nil {
			return ps, fmt.Errorf("sandbox status of pod %s: %w", ps.fullName(), err)
		}
		ps.podIP = a.podIP(ps.pod, st.GetStatus())
		// Older sandboxes of this pod (left by an interrupted recreation)
		// go, with their containers.
		if older := sandboxes[:len(sandboxes)-1]; len(older) > 0 {
			if err := a.killPod(ctx, older, containersOutside(containers, ps.sandboxID)); err != nil {
				a.log.Warn("remove older sandboxes", "pod", ps.fullName(), "err", err)
			}
		}
	}
	if err := prepareVolumes(ps.pod, a.cfg.RootDir); err != nil {
		return ps, fmt.Errorf("pod %s: %w", ps.fullName(), err)
	}

	var errs []error
	if err := a.syncInitContainers(ctx, ps); err != nil {
		errs = append(errs, err)
	}
	if ps.initDone {
		for i := range ps.pod.Spec.Containers {
			if err := a.syncContainer(ctx, ps, &ps.pod.Spec.Containers[i], false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	a.removeOlderInstances(ctx, ps)
	if ps.sandboxReady && a.finished(ps) {
		a.log.Info("pod finished; stopping its sandbox", "pod", ps.fullName(), "restartPolicy", ps.pod.Spec.RestartPolicy)
		if err := a.rt.StopPodSandbox(ctx, ps.sandboxID); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox of finished pod %s: %w", ps.fullName(), err))
		} else {
			ps.sandboxReady = false
		}
	}
	a.probes.sync(ps)
	return ps, errors.Join(errs...)
}

// groupContainers sorts the pod's containers into the current sandbox's
// latest instance per name and the rest, and reads the latest ones'
// status (exit code and times are not in the list).
func (a *Agent) groupContainers(ctx context.Context, ps *podSync, containers []*runtimeapi.Container) {
	for _, c := range containers {
		if c.PodSandboxId != ps.sandboxID {
			continue
		}
		rc := fromListed(c)
		if cur, ok := ps.latest[rc.name]; !ok || newer(rc, cur) {
			if ok {
				ps.older = append(ps.older, cur)
			}
			ps.latest[rc.name] = rc
		} else {
			ps.older = append(ps.older, rc)
		}
	}
	for _, rc := range ps.latest {
		a.refreshStatus(ctx, rc)
	}
	ps.previous = map[string]*runtimeContainer{}
	for _, rc := range ps.older {
		if cur, ok := ps.previous[rc.name]; !ok || newer(rc, cur) {
			ps.previous[rc.name] = rc
		}
	}
	for _, rc := range ps.previous {
		a.refreshStatus(ctx, rc)
	}
}

func (a *Agent) refreshStatus(ctx context.Context, rc *runtimeContainer) {
	st, err := a.rt.ContainerStatus(ctx, rc.id, false)
	if err != nil {
		a.log.Warn("container status", "id", shortID(rc.id), "err", err)
		return
	}
	if st.GetStatus() != nil {
		rc.addStatus(st.GetStatus())
	}
}

func newer(a, b *runtimeContainer) bool {
	if a.restartCount != b.restartCount {
		return a.restartCount > b.restartCount
	}
	return a.createdAt.After(b.createdAt)
}

// recreateSandbox makes a new sandbox (attempt+1), carrying restart counts
// over from the old one, whose containers are killed and which is removed.
func (a *Agent) recreateSandbox(ctx context.Context, ps *podSync, old []*runtimeapi.PodSandbox, containers []*runtimeapi.Container) error {
	attempt := uint32(0)
	if ps.sandbox != nil {
		if ps.sandbox.Metadata != nil {
			attempt = ps.sandbox.Metadata.Attempt + 1
		}
		a.log.Info("sandbox is not ready; recreating it", "pod", ps.fullName(), "sandbox", shortID(ps.sandboxID))
	}
	dns, err := dnsConfig(ps.pod, a.cfg.ResolvConf)
	if err != nil {
		return err
	}
	cfg := buildSandboxConfig(ps.pod, ps.manifest.Hash, ps.manifest.File, attempt, a.cfg.PodLogsDir, dns)
	if len(old) > 0 {
		if err := a.killPod(ctx, old, containers); err != nil {
			return fmt.Errorf("remove old sandbox of pod %s: %w", ps.fullName(), err)
		}
	}
	if err := mkdirLogDir(cfg.LogDirectory); err != nil {
		return err
	}
	id, err := a.rt.RunPodSandbox(ctx, cfg, "")
	if err != nil {
		return fmt.Errorf("run sandbox of pod %s: %w", ps.fullName(), err)
	}
	a.log.Info("sandbox started", "pod", ps.fullName(), "sandbox", shortID(id), "attempt", attempt)
	st, err := a.rt.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return fmt.Errorf("sandbox status of pod %s: %w", ps.fullName(), err)
	}
	// The old instances are gone with their sandbox; the new ones continue
	// their restart counts.
	carried := ps.latest
	ps.latest = map[string]*runtimeContainer{}
	ps.older = nil
	ps.previous = map[string]*runtimeContainer{}
	ps.carried = carried
	ps.sandbox = &runtimeapi.PodSandbox{
		Id: id, Metadata: st.GetStatus().GetMetadata(), State: st.GetStatus().GetState(),
		CreatedAt: st.GetStatus().GetCreatedAt(), Labels: cfg.Labels, Annotations: cfg.Annotations,
	}
	ps.sandboxID, ps.sandboxReady, ps.sandboxConfig = id, true, cfg
	ps.podIP = a.podIP(ps.pod, st.GetStatus())
	return nil
}

// podIP is the sandbox's IP; a host-network pod has the node's, as with
// the kubelet.
func (a *Agent) podIP(pod *v1.Pod, st *runtimeapi.PodSandboxStatus) string {
	if ip := st.GetNetwork().GetIp(); ip != "" {
		return ip
	}
	if pod.Spec.HostNetwork {
		return a.cfg.NodeIP
	}
	return ""
}

func mkdirLogDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pod log dir: %w", err)
	}
	return nil
}

// syncInitContainers runs init containers one at a time, in order; each
// must exit 0 before the next starts. Once an app container exists (e.g.
// a pod adopted after a restart) init is over.
func (a *Agent) syncInitContainers(ctx context.Context, ps *podSync) error {
	for _, c := range ps.pod.Spec.Containers {
		if ps.latest[c.Name] != nil {
			ps.initDone = true
			return nil
		}
	}
	for i := range ps.pod.Spec.InitContainers {
		c := &ps.pod.Spec.InitContainers[i]
		rc := ps.latest[c.Name]
		if rc != nil && rc.state == runtimeapi.ContainerState_CONTAINER_EXITED && rc.exitCode == 0 {
			continue
		}
		if rc != nil && rc.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return nil
		}
		return a.syncContainer(ctx, ps, c, true)
	}
	ps.initDone = true
	return nil
}

// initComplete reports, without acting, whether init is over: an app
// container exists or every init container exited 0.
func initComplete(ps *podSync) bool {
	for _, c := range ps.pod.Spec.Containers {
		if ps.latest[c.Name] != nil {
			return true
		}
	}
	for _, c := range ps.pod.Spec.InitContainers {
		rc := ps.latest[c.Name]
		if rc == nil || rc.state != runtimeapi.ContainerState_CONTAINER_EXITED || rc.exitCode != 0 {
			return false
		}
	}
	return true
}

// restartPolicyFor is the pod's policy; init containers of an Always pod
// are restarted only on failure.
func restartPolicyFor(pod *v1.Pod, init bool) v1.RestartPolicy {
	if init && pod.Spec.RestartPolicy == v1.RestartPolicyAlways {
		return v1.RestartPolicyOnFailure
	}
	return pod.Spec.RestartPolicy
}

// syncContainer starts a missing container, kills a running one whose
// liveness (or startup) probe failed, and restarts an exited one when the
// restart policy and the back-off allow.
func (a *Agent) syncContainer(ctx context.Context, ps *podSync, c *v1.Container, init bool) error {
	rc := ps.latest[c.Name]
	if rc == nil {
		count := 0
		if prev := ps.carried[c.Name]; prev != nil {
			count = prev.restartCount + 1
		}
		return a.launch(ctx, ps, c, count, 0, init)
	}
	if rc.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
		if why := a.probes.failure(rc.id); why != "" {
			a.log.Info("killing container: "+why, "pod", ps.fullName(), "container", c.Name, "id", shortID(rc.id))
			if err := a.rt.StopContainer(ctx, rc.id, gracePeriodOf(ps.sandboxConfig.Annotations)); err != nil {
				return fmt.Errorf("stop container %q of pod %s: %w", c.Name, ps.fullName(), err)
			}
			a.probes.forget(rc.id)
			a.refreshStatus(ctx, rc)
		}
		if rc.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return nil
		}
	}
	d := decideRestart(a.cfg.Backoff, restartPolicyFor(ps.pod, init), rc, time.Now())
	if !d.restart {
		return nil
	}
	if d.wait > 0 {
		ps.waiting[c.Name] = waitingState{reason: "CrashLoopBackOff",
			message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d.backoff, c.Name, ps.pod.Name)}
		ps.retryIn(d.wait)
		return nil
	}
	a.log.Info("restarting container", "pod", ps.fullName(), "container", c.Name, "exitCode", rc.exitCode,
		"restartCount", rc.restartCount+1, "backoff", d.backoff)
	return a.launch(ctx, ps, c, rc.restartCount+1, d.backoff, init)
}

// launch starts one instance and makes it the latest; a failure is shown
// as the container's waiting reason and retried after the initial back-off.
func (a *Agent) launch(ctx context.Context, ps *podSync, c *v1.Container, restartCount int, backoff time.Duration, init bool) error {
	id, err := a.startContainer(ctx, ps, c, restartCount, backoff, init)
	if id != "" {
		if prev := ps.latest[c.Name]; prev != nil {
			ps.older = append(ps.older, prev)
			ps.previous[c.Name] = prev
		}
		rc := &runtimeContainer{id: id, name: c.Name, init: init, restartCount: restartCount, backoff: backoff,
			state: runtimeapi.ContainerState_CONTAINER_CREATED, createdAt: time.Now(), image: c.Image}
		a.refreshStatus(ctx, rc)
		ps.latest[c.Name] = rc
	}
	if err != nil {
		reason := "CreateContainerError"
		switch {
		case errors.Is(err, errImageNeverPull):
			reason = "ErrImageNeverPull"
		case id == "" && isPullError(err):
			reason = "ErrImagePull"
		case id != "":
			reason = "RunContainerError"
		}
		ps.waiting[c.Name] = waitingState{reason: reason, message: err.Error()}
		ps.retryIn(a.cfg.Backoff.Initial)
	}
	return err
}

// removeOlderInstances keeps, per container name, the latest instance and
// the newest older one (for "previous" logs and last state), as the
// kubelet's container GC does, and removes the rest.
func (a *Agent) removeOlderInstances(ctx context.Context, ps *podSync) {
	sort.Slice(ps.older, func(i, j int) bool { return newer(ps.older[i], ps.older[j]) })
	kept := map[string]bool{}
	var remaining []*runtimeContainer
	for _, rc := range ps.older {
		if !kept[rc.name] && rc.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			kept[rc.name] = true
			remaining = append(remaining, rc)
			continue
		}
		if rc.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := a.rt.StopContainer(ctx, rc.id, 0); err != nil {
				a.log.Warn("stop old container instance", "pod", ps.fullName(), "id", shortID(rc.id), "err", err)
				continue
			}
		}
		if err := a.rt.RemoveContainer(ctx, rc.id); err != nil {
			a.log.Warn("remove old container instance", "pod", ps.fullName(), "id", shortID(rc.id), "err", err)
			continue
		}
		// Its log goes with it, as the kubelet's container GC does.
		if ps.sandboxConfig != nil {
			logPath := filepath.Join(ps.sandboxConfig.LogDirectory, rc.name, strconv.Itoa(rc.restartCount)+".log")
			if err := os.Remove(logPath); err != nil && !os.IsNotExist(err) {
				a.log.Warn("remove old container log", "pod", ps.fullName(), "path", logPath, "err", err)
			}
		}
	}
	ps.older = remaining
}

// finished reports whether the pod will never run a container again under
// its restart policy: every app container exited for good, or (Never) an
// init container failed.
func (a *Agent) finished(ps *podSync) bool {
	policy := ps.pod.Spec.RestartPolicy
	anyApp := false
	for _, c := range ps.pod.Spec.Containers {
		if ps.latest[c.Name] != nil {
			anyApp = true
		}
	}
	if !anyApp {
		if policy != v1.RestartPolicyNever {
			return false
		}
		for _, c := range ps.pod.Spec.InitContainers {
			if rc := ps.latest[c.Name]; rc != nil && rc.exited() && rc.effectiveExitCode() != 0 {
				return true
			}
		}
		return false
	}
	for _, c := range ps.pod.Spec.Containers {
		rc := ps.latest[c.Name]
		if rc == nil || !rc.exited() || shouldRestart(policy, rc.effectiveExitCode()) {
			return false
		}
	}
	return true
}

// isPullError tells image pull failures from other create failures.
func isPullError(err error) bool {
	var pe *pullError
	return errors.As(err, &pe)
}

// containersOutside are the containers not in sandbox id.
func containersOutside(containers []*runtimeapi.Container, id string) []*runtimeapi.Container {
	var out []*runtimeapi.Container
	for _, c := range containers {
		if c.PodSandboxId != id {
			out = append(out, c)
		}
	}
	return out
}
