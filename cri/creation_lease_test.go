package cri_test

import (
	"testing"

	"github.com/containerd/containerd/v2/core/leases"
)

// TestCreationLease checks that kcrid's one creation lease lets go of each
// rootfs snapshot once its container record exists, that the snapshots
// stay (their records hold them), and that a stopped kcrid leaves no lease.
func TestCreationLease(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	podCfg := podConfig(t, "lease")
	pod := e.runPod(podCfg)
	id := e.startContainer(pod, podCfg, containerConfig("app", "sleep", "1000"))

	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	lease := leases.Lease{ID: "kcrid-creations"}
	waitFor(t, "the creation lease to hold no snapshot", func() bool {
		resources, err := client.LeasesService().ListResources(e.ctx, lease)
		if err != nil {
			t.Fatalf("list the creation lease's resources: %v", err)
		}
		return len(resources) == 0
	})
	for _, key := range []string{pod, id} {
		if _, err := client.SnapshotService("overlayfs").Stat(e.ctx, key); err != nil {
			t.Errorf("rootfs snapshot %s: %v", key, err)
		}
	}

	e.stop()
	all, err := client.LeasesService().List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if l.ID == lease.ID {
			t.Errorf("lease %s left after kcrid stopped", l.ID)
		}
	}
}
