package cri_test

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestOOMKilledReason(t *testing.T) {
	e := newEnv(t)
	podCfg := hostNetworkPod(t, "oom")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	cfg := containerConfig("hog", "dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
	ctr := e.startContainer(pod, podCfg, cfg)
	st := e.waitState(ctr, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 137 || st.Reason != "OOMKilled" {
		t.Errorf("exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
	}
}
