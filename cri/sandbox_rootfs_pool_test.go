package cri_test

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPauseRootfsKept: a removed pod's pause rootfs snapshot is kept (a
// garbage collection does not take it) and becomes the next pod's, also
// across a kcrid restart; a running pod's is never handed out twice.
func TestPauseRootfsKept(t *testing.T) {
	e := newEnv(t)
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	rootfsOf := func(pod string) string {
		t.Helper()
		info, err := client.ContainerService().Get(e.ctx, pod)
		if err != nil {
			t.Fatal(err)
		}
		return info.SnapshotKey
	}
	spares := func() []string {
		t.Helper()
		var keys []string
		err := client.SnapshotService("overlayfs").Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
			if info.Labels["io.kcrid/pause-rootfs"] != "" && info.Labels["containerd.io/gc.root"] != "" {
				keys = append(keys, info.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}

	first := e.runPod(hostNetworkPod(t, "first"))
	kept := rootfsOf(first)
	if err := e.rs.RemovePodSandbox(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	// containerd's GC may run at any mutation, the container's delete
	// included; a kept snapshot must be out of its reach by then.
	lease, err := client.LeasesService().Create(e.ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.LeasesService().Delete(e.ctx, lease, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
	if got := spares(); len(got) != 1 || got[0] != kept {
		t.Fatalf("kept rootfs snapshots %v, want [%s]", got, kept)
	}
	second := e.runPod(hostNetworkPod(t, "second"))
	if got := rootfsOf(second); got != kept {
		t.Errorf("second pod's rootfs %s, want the kept %s", got, kept)
	}
	third := e.runPod(hostNetworkPod(t, "third"))
	if got := rootfsOf(third); got == kept {
		t.Errorf("third pod got the rootfs the second pod runs on")
	}

	// A restarted kcrid finds the kept one again.
	if err := e.rs.RemovePodSandbox(e.ctx, second); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.start()
	fourth := e.runPod(hostNetworkPod(t, "fourth"))
	if got := rootfsOf(fourth); got != kept {
		t.Errorf("after a restart the pod's rootfs is %s, want the kept %s", got, kept)
	}
	st, err := e.rs.PodSandboxStatus(e.ctx, fourth, false)
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("pod on a kept rootfs: %v %v, want READY", st.GetStatus().GetState(), err)
	}
}
