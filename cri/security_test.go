package cri_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/containers"
)

// TestContainerSecurityAndResources checks what the spec builder does as
// seen from inside the container.
func TestContainerSecurityAndResources(t *testing.T) {
	e := newEnv(t)
	podCfg := hostNetworkPod(t, "sec")
	pod := e.runPod(podCfg)
	e.pullBusybox()

	var id string
	run := func(name string, mutate func(*runtimeapi.ContainerConfig), cmd ...string) string {
		t.Helper()
		cfg := containerConfig(name, "sleep", "1000")
		cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{}
		mutate(cfg)
		id = e.startContainer(pod, podCfg, cfg)
		out, stderr, err := e.rs.ExecSync(e.ctx, id, cmd, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: exec %v: %v (%s)", name, cmd, err, stderr)
		}
		return strings.TrimSpace(string(out))
	}

	out := run("ids", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
		c.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: 2000}
		c.Linux.SecurityContext.SupplementalGroups = []int64{3000}
	}, "id")
	if !strings.HasPrefix(out, "uid=1000 gid=2000") || !strings.Contains(out, "3000") {
		t.Errorf("run_as_user/group/supplemental: id says %q", out)
	}
	st, err := e.rs.ContainerStatus(e.ctx, id, false)
	if u := st.GetStatus().GetUser().GetLinux(); err != nil || u.GetUid() != 1000 || u.GetGid() != 2000 || !slices.Contains(u.GetSupplementalGroups(), 3000) {
		t.Errorf("ContainerStatus user %v (%v)", u, err)
	}
	out = run("username", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.RunAsUsername = "www-data"
	}, "id", "-u")
	if out != "33" {
		t.Errorf("run_as_username www-data: uid %q, want 33", out)
	}
	out = run("rootfs-ro", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.ReadonlyRootfs = true
	}, "sh", "-c", "touch /kcrid-probe 2>&1; echo rc=$?")
	if !strings.HasSuffix(out, "rc=1") {
		t.Errorf("readonly rootfs: touch gave %q", out)
	}
	out = run("nocaps", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
	}, "sh", "-c", "grep CapEff /proc/self/status")
	if !strings.HasSuffix(out, "0000000000000000") {
		t.Errorf("drop ALL: %q", out)
	}
	out = run("netadmin", func(c *runtimeapi.ContainerConfig) {
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}}
	}, "sh", "-c", "grep CapEff /proc/self/status")
	if mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(out, "CapEff:")), 16, 64); err != nil || mask&(1<<12) == 0 {
		t.Errorf("add NET_ADMIN: %q", out)
	}
	floor, restricted, err := containers.OOMScoreAdjFloor()
	if err != nil {
		t.Fatal(err)
	}
	out = run("resources", func(c *runtimeapi.ContainerConfig) {
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{
			OomScoreAdj:        -999,
			MemoryLimitInBytes: 64 << 20,
			CpuShares:          512,
			CpuPeriod:          100000,
			CpuQuota:           50000,
		}
	}, "cat", "/proc/self/oom_score_adj")
	want := "-999"
	if restricted && floor > -999 {
		want = strconv.Itoa(floor)
	}
	if out != want {
		t.Errorf("oom_score_adj %q, want %s (floor %d, restricted %v)", out, want, floor, restricted)
	}
	out = run("workdir-env", func(c *runtimeapi.ContainerConfig) {
		c.WorkingDir = "/tmp"
		c.Envs = []*runtimeapi.KeyValue{{Key: "PATH", Value: []byte("/bin:/usr/bin")}}
	}, "sh", "-c", "pwd; echo $PATH")
	if out != "/tmp\n/bin:/usr/bin" {
		t.Errorf("working dir and env override: %q", out)
	}
	dir := t.TempDir()
	out = run("mounts", func(c *runtimeapi.ContainerConfig) {
		c.Mounts = []*runtimeapi.Mount{{HostPath: dir, ContainerPath: "/data", Readonly: true}}
	}, "sh", "-c", "touch /data/x 2>&1; echo rc=$?")
	if !strings.HasSuffix(out, "rc=1") {
		t.Errorf("readonly mount: %q", out)
	}
}
