package cri_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"
)

func TestPodAndContainerLifecycle(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "life")
	pod := e.runPod(podCfg)

	st, err := e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod state %s", st.Status.State)
	}
	ip := net.ParseIP(st.Status.GetNetwork().GetIp())
	_, subnet, _ := net.ParseCIDR(testSubnet)
	if ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not in %s", st.Status.GetNetwork().GetIp(), testSubnet)
	}

	e.pullBusybox()
	cfg := containerConfig("main", "sh", "-c", "echo out-line; echo err-line >&2; exec sleep 1000")
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello")}}
	ctr := e.startContainer(pod, podCfg, cfg)

	// How long a second pod takes (images present), for the record.
	start := time.Now()
	timedCfg := podConfig(t, "timed")
	timed := e.runPod(timedCfg)
	e.startContainer(timed, timedCfg, containerConfig("t", "sleep", "1000"))
	t.Logf("runp+create+start with CNI: %v", time.Since(start).Round(time.Millisecond))
	if err := e.rs.RemovePodSandbox(e.ctx, timed); err != nil {
		t.Fatal(err)
	}
	e.waitState(ctr, runtimeapi.ContainerState_CONTAINER_RUNNING)

	exec := func(cmd ...string) (string, int32) {
		t.Helper()
		stdout, stderr, err := e.rs.ExecSync(e.ctx, ctr, cmd, 10*time.Second)
		if err != nil {
			t.Fatalf("ExecSync %v: %v", cmd, err)
		}
		_ = stderr
		return string(stdout), 0
	}
	if out, _ := exec("cat", "/etc/hostname"); strings.TrimSpace(out) != "life" {
		t.Errorf("hostname %q", out)
	}
	if out, _ := exec("cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.231.0.10") || !strings.Contains(out, "search svc.test") {
		t.Errorf("resolv.conf %q", out)
	}
	if out, _ := exec("sh", "-c", "echo $GREETING"); strings.TrimSpace(out) != "hello" {
		t.Errorf("env GREETING %q", out)
	}
	if out, _ := exec("ip", "-4", "addr", "show", "eth0"); !strings.Contains(out, ip.String()) {
		t.Errorf("eth0 in container: %q, want %s", out, ip)
	}
	// A failing command is an exit code, not an RPC error.
	_, _, err = e.rs.ExecSync(e.ctx, ctr, []string{"sh", "-c", "exit 3"}, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "3") {
		t.Errorf("ExecSync exit 3: err %v", err)
	}

	list, err := e.rs.ListContainers(e.ctx, &runtimeapi.ContainerFilter{PodSandboxId: pod})
	if err != nil || len(list) != 1 || list[0].Id != ctr {
		t.Fatalf("ListContainers: %v %v", list, err)
	}

	// Logs in CRI format, read back with the kubelet's reader.
	logPath := filepath.Join(podCfg.LogDirectory, cfg.LogPath)
	var stdout, stderr bytes.Buffer
	waitFor(t, "log lines", func() bool {
		stdout.Reset()
		stderr.Reset()
		err := logs.ReadLogs(context.Background(), logPath, ctr, &logs.LogOptions{}, e.rs, &stdout, &stderr)
		return err == nil && strings.Contains(stdout.String(), "out-line") && strings.Contains(stderr.String(), "err-line")
	})

	if err := e.rs.StopContainer(e.ctx, ctr, 1); err != nil {
		t.Fatal(err)
	}
	status := e.waitState(ctr, runtimeapi.ContainerState_CONTAINER_EXITED)
	if status.ExitCode != 143 || status.Reason != "Error" { // SIGTERM; sleep is not pid 1 (the pod shares the pause pid namespace)
		t.Errorf("stopped container: exit %d reason %q, want 143 Error", status.ExitCode, status.Reason)
	}
	if status.LogPath != logPath || status.Image.GetImage() != busyboxImage || !strings.HasPrefix(status.ImageRef, "docker.io/library/busybox@sha256:") {
		t.Errorf("status: log %q image %q ref %q", status.LogPath, status.Image.GetImage(), status.ImageRef)
	}
	// Repeated stops succeed.
	if err := e.rs.StopContainer(e.ctx, ctr, 1); err != nil {
		t.Errorf("second StopContainer: %v", err)
	}

	// A container that exits by itself.
	done := e.startContainer(pod, podCfg, containerConfig("done", "sh", "-c", "exit 0"))
	if st := e.waitState(done, runtimeapi.ContainerState_CONTAINER_EXITED); st.Reason != "Completed" || st.ExitCode != 0 {
		t.Errorf("completed container: exit %d reason %q", st.ExitCode, st.Reason)
	}
	failed := e.startContainer(pod, podCfg, containerConfig("failed", "sh", "-c", "exit 7"))
	if st := e.waitState(failed, runtimeapi.ContainerState_CONTAINER_EXITED); st.Reason != "Error" || st.ExitCode != 7 {
		t.Errorf("failed container: exit %d reason %q", st.ExitCode, st.Reason)
	}
	exited, err := e.rs.ListContainers(e.ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED},
	})
	if err != nil || len(exited) != 3 {
		t.Errorf("exited containers: %d, %v", len(exited), err)
	}

	for _, id := range []string{ctr, done, failed} {
		if err := e.rs.RemoveContainer(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatalf("second StopPodSandbox: %v", err)
	}
	st, err = e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("stopped pod: %v %v", st, err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatalf("second RemovePodSandbox: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "netns")); len(entries) != 0 {
		t.Errorf("netns left behind: %v", entries)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
