package cri_test

import (
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// TestSandboxRecord checks that on containerd 2.x a pod has a record in
// containerd's sandbox store that its containers name, and that the record
// goes with the pod; containerd 1.x has no sandbox store and no record.
func TestSandboxRecord(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	podCfg := podConfig(t, "record")
	pod := e.runPod(podCfg)
	id := e.startContainer(pod, podCfg, containerConfig("app", "sleep", "1000"))
	info, err := client.ContainerService().Get(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	_, recordErr := client.SandboxStore().Get(e.ctx, pod)
	if daemon.Version() == "1.6" {
		if info.SandboxID != "" || !errdefs.IsNotImplemented(recordErr) {
			t.Errorf("containerd 1.6: container names sandbox %q, record lookup %v; want neither", info.SandboxID, recordErr)
		}
		return
	}
	if recordErr != nil || info.SandboxID != pod {
		t.Fatalf("sandbox record: %v; container names sandbox %q, want %s", recordErr, info.SandboxID, pod)
	}
	// The container runs on the pause task's shim: exec reaches it.
	if out, _, err := e.rs.ExecSync(e.ctx, id, []string{"echo", "ok"}, 10*time.Second); err != nil || string(out) != "ok\n" {
		t.Errorf("exec in a container of a recorded sandbox: %q %v", out, err)
	}
	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SandboxStore().Get(e.ctx, pod); !errdefs.IsNotFound(err) {
		t.Errorf("sandbox record after RemovePodSandbox: %v, want NotFound", err)
	}
}
