package cri_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodMounts checks the mounts every container of a pod gets: a
// /dev/shm shared by the pod's containers (the host's for a host-IPC pod),
// a read-only /sys/fs/cgroup, the image's own /run; that the pod's /dev/shm
// mount goes with the pod; and that no default rlimit is imposed.
func TestPodMounts(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	exec := e.execOK

	podCfg := podConfig(t, "mounts")
	pod := e.runPod(podCfg)
	shmDir := filepath.Join(e.cfg.StateDir, "sandboxes", pod, "shm")
	first := e.startContainer(pod, podCfg, containerConfig("first", "sleep", "1000"))
	second := e.startContainer(pod, podCfg, containerConfig("second", "sleep", "1000"))

	exec(first, "sh", "-c", "echo shared > /dev/shm/probe")
	if got := exec(second, "cat", "/dev/shm/probe"); got != "shared" {
		t.Errorf("/dev/shm of the pod's second container holds %q, want the first one's file", got)
	}
	if got := exec(first, "sh", "-c", "grep ' /dev/shm ' /proc/mounts"); !strings.Contains(got, "tmpfs") || !strings.Contains(got, "size=65536k") {
		t.Errorf("/dev/shm mount %q, want the pod's 64 MiB tmpfs", got)
	}
	// The container's memory limit file (cgroup v1 or v2) can be read, not written.
	limit := `f=/sys/fs/cgroup/memory/memory.limit_in_bytes; [ -e $f ] || f=/sys/fs/cgroup/memory.max; ` +
		`cat $f >/dev/null && echo readable; (echo 100000000 > $f) 2>/dev/null; echo rc=$?`
	if got := exec(first, "sh", "-c", limit); !strings.HasPrefix(got, "readable\n") || strings.HasSuffix(got, "rc=0") {
		t.Errorf("/sys/fs/cgroup: %q, want the memory limit readable and read-only", got)
	}
	if got := exec(first, "sh", "-c", "grep -c ' /run ' /proc/mounts || true"); got != "0" {
		t.Errorf("/run is a mount (%s), want the image's dir", got)
	}
	// No rlimits (the default spec has RLIMIT_NOFILE 1024): the shim's.
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, id := range []string{pod, first} {
		ctr, err := client.LoadContainer(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := ctr.Spec(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(spec.Process.Rlimits) > 0 {
			t.Errorf("spec of %s has rlimits %+v, want the runtime's own", id, spec.Process.Rlimits)
		}
	}

	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if mounted(t, shmDir) {
		t.Errorf("%s still mounted after StopPodSandbox", shmDir)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(shmDir)); !os.IsNotExist(err) {
		t.Errorf("pod state dir after RemovePodSandbox: %v, want it gone", err)
	}

	hostIPC := podConfig(t, "host-ipc")
	hostIPC.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE},
	}
	pod = e.runPod(hostIPC)
	id := e.startContainer(pod, hostIPC, containerConfig("host", "sleep", "1000"))
	probe := "kcrid-test-" + pod[:12]
	t.Cleanup(func() { _ = os.Remove(filepath.Join("/dev/shm", probe)) })
	exec(id, "sh", "-c", "echo host > /dev/shm/"+probe)
	if b, err := os.ReadFile(filepath.Join("/dev/shm", probe)); err != nil || string(b) != "host\n" {
		t.Errorf("host-IPC pod's /dev/shm file on the host: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "sandboxes", pod, "shm")); !os.IsNotExist(err) {
		t.Errorf("host-IPC pod has a /dev/shm of its own: %v", err)
	}
}

// mounted reports whether path is a mount point in our mount namespace.
func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	return false
}
