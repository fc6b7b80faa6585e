package kubelet

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodPhase(t *testing.T) {
	running := func(name string) *runtimeContainer {
		return &runtimeContainer{id: name, name: name, state: runtimeapi.ContainerState_CONTAINER_RUNNING}
	}
	exited := func(name string, code int32) *runtimeContainer {
		return &runtimeContainer{id: name, name: name, state: runtimeapi.ContainerState_CONTAINER_EXITED, exitCode: code}
	}
	tests := []struct {
		name    string
		policy  v1.RestartPolicy
		latest  map[string]*runtimeContainer
		waiting map[string]waitingState
		init    bool
		want    v1.PodPhase
	}{
		{"nothing yet", v1.RestartPolicyAlways, nil, nil, true, v1.PodPending},
		{"one running one missing", v1.RestartPolicyAlways, map[string]*runtimeContainer{"a": running("a")}, nil, true, v1.PodPending},
		{"all running", v1.RestartPolicyAlways, map[string]*runtimeContainer{"a": running("a"), "b": running("b")}, nil, true, v1.PodRunning},
		{"crash loop", v1.RestartPolicyAlways, map[string]*runtimeContainer{"a": exited("a", 1), "b": running("b")},
			map[string]waitingState{"a": {reason: "CrashLoopBackOff"}}, true, v1.PodRunning},
		{"never, one failed", v1.RestartPolicyNever, map[string]*runtimeContainer{"a": exited("a", 0), "b": exited("b", 2)}, nil, true, v1.PodFailed},
		{"never, all done", v1.RestartPolicyNever, map[string]*runtimeContainer{"a": exited("a", 0), "b": exited("b", 0)}, nil, true, v1.PodSucceeded},
		{"on failure, all done", v1.RestartPolicyOnFailure, map[string]*runtimeContainer{"a": exited("a", 0), "b": exited("b", 0)}, nil, true, v1.PodSucceeded},
		{"init running", v1.RestartPolicyAlways, map[string]*runtimeContainer{"init": running("init")}, nil, false, v1.PodPending},
		{"init failed, never", v1.RestartPolicyNever, map[string]*runtimeContainer{"init": exited("init", 1)}, nil, false, v1.PodFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: tt.policy,
				InitContainers: []v1.Container{{Name: "init"}},
				Containers:     []v1.Container{{Name: "a"}, {Name: "b"}}}}
			ps := &podSync{pod: pod, latest: tt.latest, waiting: tt.waiting, initDone: tt.init, sandbox: &runtimeapi.PodSandbox{}}
			if ps.latest == nil {
				ps.latest = map[string]*runtimeContainer{}
			}
			if ps.waiting == nil {
				ps.waiting = map[string]waitingState{}
			}
			m := newProbeManager(context.Background(), &fakeExec{}, func(string) {})
			st := buildPodStatus(ps, m, "test", "")
			if st.Phase != tt.want {
				t.Errorf("phase %s, want %s (statuses %+v)", st.Phase, tt.want, st.ContainerStatuses)
			}
		})
	}
}

func TestContainerStatusCrashLoop(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways, Containers: []v1.Container{{Name: "a", Image: "busybox"}}}}
	fin := time.Unix(100, 0)
	ps := &podSync{pod: pod, initDone: true, sandboxReady: true, podIP: "10.0.0.5", sandbox: &runtimeapi.PodSandbox{},
		latest: map[string]*runtimeContainer{"a": {id: "abc", name: "a", state: runtimeapi.ContainerState_CONTAINER_EXITED,
			exitCode: 1, restartCount: 3, finishedAt: fin}},
		waiting: map[string]waitingState{"a": {reason: "CrashLoopBackOff", message: "back-off 40s"}}}
	m := newProbeManager(context.Background(), &fakeExec{}, func(string) {})
	st := buildPodStatus(ps, m, "containerd", "192.0.2.7")
	cs := st.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 3 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 || cs.ContainerID != "containerd://abc" {
		t.Errorf("container status %+v", cs)
	}
	if st.PodIP != "10.0.0.5" || st.HostIP != "192.0.2.7" || st.Phase != v1.PodRunning {
		t.Errorf("pod status %+v", st)
	}
}

func TestQOSClass(t *testing.T) {
	res := func(req, lim string) v1.ResourceRequirements {
		r := v1.ResourceRequirements{Requests: v1.ResourceList{}, Limits: v1.ResourceList{}}
		if req != "" {
			r.Requests[v1.ResourceCPU], r.Requests[v1.ResourceMemory] = resource.MustParse(req), resource.MustParse(req)
		}
		if lim != "" {
			r.Limits[v1.ResourceCPU], r.Limits[v1.ResourceMemory] = resource.MustParse(lim), resource.MustParse(lim)
		}
		return r
	}
	for _, tt := range []struct {
		r    v1.ResourceRequirements
		want v1.PodQOSClass
	}{
		{v1.ResourceRequirements{}, v1.PodQOSBestEffort},
		{res("1", "1"), v1.PodQOSGuaranteed},
		{res("", "1"), v1.PodQOSGuaranteed},
		{res("1", "2"), v1.PodQOSBurstable},
		{res("1", ""), v1.PodQOSBurstable},
	} {
		pod := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Resources: tt.r}}}}
		if got := qosClass(pod); got != tt.want {
			t.Errorf("qosClass(%+v) = %s, want %s", tt.r, got, tt.want)
		}
	}
}
