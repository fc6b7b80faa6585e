package cri_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestExecSyncTimeoutUpdateResourcesAndReopenLog(t *testing.T) {
	e := newEnv(t)
	podCfg := hostNetworkPod(t, "ops")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	cfg := containerConfig("ops", "sh", "-c", "while true; do echo tick; sleep 0.05; done")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}
	ctr := e.startContainer(pod, podCfg, cfg)

	// ExecSync with a timeout fails with DeadlineExceeded and kills the
	// command.
	start := time.Now()
	_, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"sleep", "30"}, time.Second)
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("ExecSync past its timeout: %v after %v", err, time.Since(start))
	}
	out, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"sh", "-c", "ps -o args | grep '^sleep 30' || true"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("timed-out exec still running: %q %v", out, err)
	}

	// UpdateContainerResources reaches the live cgroup.
	if err := e.rs.UpdateContainerResources(e.ctx, ctr, &runtimeapi.ContainerResources{
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20},
	}); err != nil {
		t.Fatal(err)
	}
	// Read on the host: kcrid puts a pod without cgroup parent under /kcrid.
	limit, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory/kcrid", ctr, "memory.limit_in_bytes"))
	if os.IsNotExist(err) {
		limit, err = os.ReadFile(filepath.Join("/sys/fs/cgroup/kcrid", ctr, "memory.max"))
	}
	if err != nil || strings.TrimSpace(string(limit)) != "134217728" {
		t.Errorf("memory limit after update: %q %v", limit, err)
	}

	// After rotation, ReopenContainerLog makes new lines go to a new file.
	path := filepath.Join(podCfg.LogDirectory, cfg.LogPath)
	waitFor(t, "first log lines", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte("tick"))
	})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.ReopenContainerLog(e.ctx, ctr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lines in the reopened log", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte(" stdout F tick"))
	})

	// Verbose status carries JSON info.
	st, err := e.rs.ContainerStatus(context.Background(), ctr, true)
	if err != nil || !strings.Contains(st.Info["info"], pod) {
		t.Errorf("verbose status info %v %v", st.GetInfo(), err)
	}
}
