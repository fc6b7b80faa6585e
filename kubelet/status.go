package kubelet

import (
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Reasons kubelet-lite puts in statuses besides the kubelet's own.
const (
	// ReasonFailedToLoad marks a pod whose manifest did not load.
	ReasonFailedToLoad = "FailedToLoad"
)

// buildPodStatus turns one pass of a pod worker into a v1.PodStatus, as
// the kubelet's status manager would publish it.
func buildPodStatus(ps *podSync, probes *probeManager, runtimeName, nodeIP string) v1.PodStatus {
	st := v1.PodStatus{Message: ps.problem}
	if nodeIP != "" {
		st.HostIP = nodeIP
		st.HostIPs = []v1.HostIP{{IP: nodeIP}}
	}
	if ps.sandbox != nil {
		t := metav1.NewTime(time.Unix(0, ps.sandbox.CreatedAt))
		st.StartTime = &t
	}
	if ps.sandboxReady && ps.podIP != "" {
		st.PodIP = ps.podIP
		st.PodIPs = []v1.PodIP{{IP: ps.podIP}}
	}
	allReady := len(ps.pod.Spec.Containers) > 0
	for i := range ps.pod.Spec.InitContainers {
		c := &ps.pod.Spec.InitContainers[i]
		st.InitContainerStatuses = append(st.InitContainerStatuses, containerStatus(ps, c, probes, runtimeName, true))
	}
	for i := range ps.pod.Spec.Containers {
		c := &ps.pod.Spec.Containers[i]
		cs := containerStatus(ps, c, probes, runtimeName, false)
		if !cs.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.Phase = podPhase(ps, st.ContainerStatuses)
	st.QOSClass = qosClass(ps.pod)
	now := metav1.Now()
	cond := func(t v1.PodConditionType, ok bool, reason string) v1.PodCondition {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, LastTransitionTime: now}
		if ok {
			c.Status = v1.ConditionTrue
		} else {
			c.Reason = reason
		}
		return c
	}
	ready := allReady && st.Phase == v1.PodRunning
	st.Conditions = []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, ps.sandboxReady, ""),
		cond(v1.PodInitialized, ps.initDone, "ContainersNotInitialized"),
		cond(v1.ContainersReady, ready, "ContainersNotReady"),
		cond(v1.PodReady, ready, "ContainersNotReady"),
		cond(v1.PodScheduled, true, ""),
	}
	return st
}

func containerStatus(ps *podSync, c *v1.Container, probes *probeManager, runtimeName string, init bool) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: c.Name, Image: c.Image}
	rc := ps.latest[c.Name]
	if rc == nil {
		reason := "PodInitializing"
		if init || ps.initDone {
			reason = "ContainerCreating"
		}
		if w, ok := ps.waiting[c.Name]; ok {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		} else {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: reason}
		}
		return cs
	}
	cs.ContainerID = runtimeName + "://" + rc.id
	cs.ImageID = rc.imageRef
	cs.RestartCount = int32(rc.restartCount)
	if prev := ps.previous[c.Name]; prev != nil && prev.state == runtimeapi.ContainerState_CONTAINER_EXITED {
		cs.LastTerminationState.Terminated = terminated(prev)
	}
	switch rc.state {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		res := probes.results(rc.id)
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(rc.startedAt)}
		started := res.started
		cs.Started = &started
		cs.Ready = !init && res.started && res.ready
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		term := terminated(rc)
		if w, ok := ps.waiting[c.Name]; ok {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
			cs.LastTerminationState.Terminated = term
		} else {
			cs.State.Terminated = term
		}
		started := false
		cs.Started = &started
	default:
		if w, ok := ps.waiting[c.Name]; ok {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: w.reason, Message: w.message}
		} else {
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
	}
	return cs
}

func terminated(rc *runtimeContainer) *v1.ContainerStateTerminated {
	reason := rc.reason
	if reason == "" {
		reason = "Completed"
		if rc.exitCode != 0 {
			reason = "Error"
		}
	}
	return &v1.ContainerStateTerminated{
		ExitCode:    rc.exitCode,
		Reason:      reason,
		Message:     rc.message,
		StartedAt:   metav1.NewTime(rc.startedAt),
		FinishedAt:  metav1.NewTime(rc.finishedAt),
		ContainerID: rc.id,
	}
}

// podPhase follows the kubelet's rules: Pending until every container has
// started once; Running while any runs or will be restarted; then
// Succeeded or Failed by exit codes and restart policy.
func podPhase(ps *podSync, statuses []v1.ContainerStatus) v1.PodPhase {
	if !ps.initDone {
		if ps.sandbox != nil && finishedForGood(ps) {
			return v1.PodFailed
		}
		return v1.PodPending
	}
	var waiting, running, succeeded, failed int
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			running++ // restarting after a crash
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	}
	switch ps.pod.Spec.RestartPolicy {
	case v1.RestartPolicyAlways:
		return v1.PodRunning
	case v1.RestartPolicyOnFailure:
		if failed > 0 {
			return v1.PodRunning
		}
		return v1.PodSucceeded
	}
	if failed > 0 {
		return v1.PodFailed
	}
	return v1.PodSucceeded
}

// finishedForGood: an init container failed under restartPolicy Never.
func finishedForGood(ps *podSync) bool {
	if ps.pod.Spec.RestartPolicy != v1.RestartPolicyNever {
		return false
	}
	for _, c := range ps.pod.Spec.InitContainers {
		if rc := ps.latest[c.Name]; rc != nil && rc.exited() && rc.effectiveExitCode() != 0 {
			return true
		}
	}
	return false
}

// qosClass is Guaranteed when every container has equal cpu and memory
// requests and limits, BestEffort with none at all, else Burstable.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	anySet, guaranteed := false, true
	for _, c := range all {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			anySet = true
		}
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			lim, ok := c.Resources.Limits[r]
			if !ok {
				guaranteed = false
				continue
			}
			if req, ok := c.Resources.Requests[r]; ok && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !anySet:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// podObject is a manifest's pod as /pods shows it: metadata with the
// kubelet's config annotations, the defaulted spec, and status.
func podObject(m *Manifest, status *v1.PodStatus) v1.Pod {
	if m.Pod == nil {
		name := m.Name
		if name == "" {
			name = filepath.Base(m.File)
		}
		return v1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.Namespace,
				Annotations: map[string]string{annotationConfigSource: "file", annotationManifestFile: m.File}},
			Status: v1.PodStatus{Phase: v1.PodFailed, Reason: ReasonFailedToLoad, Message: m.Err.Error()},
		}
	}
	pod := m.Pod.DeepCopy()
	pod.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[annotationConfigSource] = "file"
	pod.Annotations[annotationConfigHash] = m.Hash
	pod.Annotations[annotationManifestFile] = m.File
	if status != nil {
		pod.Status = *status
	} else {
		pod.Status = v1.PodStatus{Phase: v1.PodPending, QOSClass: qosClass(m.Pod)}
	}
	return *pod
}
