package kubelet

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBackoffNext(t *testing.T) {
	b := Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}
	var seq []time.Duration
	prev := time.Duration(0)
	for range 8 {
		prev = b.Next(prev, time.Second)
		seq = append(seq, prev)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("back-off sequence %v, want %v", seq, want)
		}
	}
	if got := b.Next(5*time.Minute, 10*time.Minute); got != 10*time.Second {
		t.Errorf("after running 10m the back-off is %s, want it reset to 10s", got)
	}
}

func TestDecideRestart(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 8 * time.Second, Reset: time.Minute}
	now := time.Unix(1000, 0)
	exited := func(code int32, finishedAgo, ran, backoff time.Duration) *runtimeContainer {
		fin := now.Add(-finishedAgo)
		return &runtimeContainer{state: runtimeapi.ContainerState_CONTAINER_EXITED, exitCode: code,
			startedAt: fin.Add(-ran), finishedAt: fin, backoff: backoff}
	}
	tests := []struct {
		name   string
		policy v1.RestartPolicy
		c      *runtimeContainer
		want   restartDecision
	}{
		{"never", v1.RestartPolicyNever, exited(1, 0, time.Second, 0), restartDecision{}},
		{"on-failure success", v1.RestartPolicyOnFailure, exited(0, 0, time.Second, 0), restartDecision{}},
		{"on-failure failure waits", v1.RestartPolicyOnFailure, exited(1, 0, time.Second, 0), restartDecision{restart: true, wait: time.Second, backoff: time.Second}},
		{"always doubles", v1.RestartPolicyAlways, exited(0, 500*time.Millisecond, time.Second, 2*time.Second), restartDecision{restart: true, wait: 3500 * time.Millisecond, backoff: 4 * time.Second}},
		{"always due", v1.RestartPolicyAlways, exited(1, 10*time.Second, time.Second, 4*time.Second), restartDecision{restart: true, backoff: 8 * time.Second}},
		{"capped", v1.RestartPolicyAlways, exited(1, 10*time.Second, time.Second, 8*time.Second), restartDecision{restart: true, backoff: 8 * time.Second}},
		{"reset after a long run", v1.RestartPolicyAlways, exited(1, 0, 2*time.Minute, 8*time.Second), restartDecision{restart: true, wait: time.Second, backoff: time.Second}},
		{"never started counts as failed", v1.RestartPolicyOnFailure, &runtimeContainer{state: runtimeapi.ContainerState_CONTAINER_CREATED, createdAt: now.Add(-time.Minute)}, restartDecision{restart: true, backoff: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideRestart(b, tt.policy, tt.c, now); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRestartPolicyForInitContainers(t *testing.T) {
	pod := &v1.Pod{Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyAlways}}
	if got := restartPolicyFor(pod, true); got != v1.RestartPolicyOnFailure {
		t.Errorf("init container of an Always pod: %s, want OnFailure", got)
	}
	if got := restartPolicyFor(pod, false); got != v1.RestartPolicyAlways {
		t.Errorf("app container: %s", got)
	}
}
