package cri_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// leftovers lists what the env's namespace holds in containerd, its netns
// dir and the shared IPAM store, to prove a failed call left nothing.
func (e *env) leftovers() (ctrs, snaps, netns, ips []string) {
	e.t.Helper()
	cl, err := daemon.Client(e.ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	cs, err := cl.Containers(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range cs {
		ctrs = append(ctrs, c.ID())
	}
	sn := cl.SnapshotService("overlayfs")
	_ = sn.Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
		// Kept pause rootfs snapshots are kcrid's pool, not leftovers.
		if info.Kind == snapshots.KindActive && info.Labels["io.kcrid/pause-rootfs"] == "" {
			snaps = append(snaps, info.Name)
		}
		return nil
	})
	entries, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, "netns"))
	for _, en := range entries {
		netns = append(netns, en.Name())
	}
	allocated, _ := os.ReadDir(filepath.Join(shared.ipamDir, "kcridtest"))
	for _, en := range allocated {
		if strings.HasPrefix(en.Name(), "10.231.") {
			ips = append(ips, en.Name())
		}
	}
	return
}

func (e *env) assertClean(what string, wantCtrs ...string) {
	e.t.Helper()
	ctrs, snaps, netns, ips := e.leftovers()
	if len(ctrs) != len(wantCtrs) || len(snaps) != len(wantCtrs) || len(netns) > len(wantCtrs) {
		e.t.Errorf("%s left behind: containers %v, active snapshots %v, netns %v (want only %v)", what, ctrs, snaps, netns, wantCtrs)
	}
	if len(wantCtrs) == 0 && len(ips) > 0 {
		e.t.Errorf("%s left IPs allocated: %v", what, ips)
	}
}

func TestRunPodSandboxFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	// The pause container fails to start after netns and CNI ADD are done:
	// runc cannot set a sysctl that does not exist.
	cfg := podConfig(t, "badsysctl")
	cfg.Linux.Sysctls = map[string]string{"kernel.kcrid_no_such_sysctl": "1"}
	if _, err := e.rs.RunPodSandbox(e.ctx, cfg, ""); err == nil {
		t.Fatal("RunPodSandbox with a bogus sysctl succeeded")
	}
	e.assertClean("failed RunPodSandbox (start)")
	// The same name is free again.
	e.runPod(podConfig(t, "badsysctl"))
}

func TestRunPodSandboxBadCNIConfig(t *testing.T) {
	confDir := t.TempDir()
	bad := `{"cniVersion": "1.0.0", "name": "kcridbad", "plugins": [
	  {"type": "bridge", "bridge": "kcridtest0", "ipam": {"type": "host-local", "ranges": [[{"subnet": "not-a-subnet"}]]}}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-bad.conflist"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withCNIConfDir(confDir))
	if _, err := e.rs.RunPodSandbox(e.ctx, podConfig(t, "badcni"), ""); err == nil {
		t.Fatal("RunPodSandbox with a broken CNI config succeeded")
	}
	e.assertClean("failed RunPodSandbox (cni)")
}

func TestCreateContainerFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "badctr")
	pod := e.runPod(podCfg)
	e.pullBusybox()

	// Fails inside containerd's NewContainer, after the snapshot was made:
	// the user is looked up in the container's rootfs.
	cfg := containerConfig("nouser", "true")
	cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "kcrid-nobody"}
	if _, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg); !isCode(err, "InvalidArgument") {
		t.Fatalf("CreateContainer with an unknown user: %v", err)
	}
	e.assertClean("failed CreateContainer (user)", pod)

	cfg = containerConfig("badmount", "true")
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "relative/path"}}
	if _, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg); !isCode(err, "InvalidArgument") {
		t.Errorf("CreateContainer with a relative mount: %v", err)
	}
	cfg = containerConfig("noimage", "true")
	cfg.Image.Image = "docker.io/library/kcrid-missing:1"
	if _, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg); !isCode(err, "NotFound") {
		t.Errorf("CreateContainer with a missing image: %v", err)
	}
	e.assertClean("failed CreateContainer", pod)
	// The failed names are free again.
	e.startContainer(pod, podCfg, containerConfig("nouser", "true"))
}

func TestBadInputCodes(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	if _, err := e.rs.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{}, ""); !isCode(err, "InvalidArgument") {
		t.Errorf("pod without metadata: %v", err)
	}
	noName := podConfig(t, "")
	if _, err := e.rs.RunPodSandbox(ctx, noName, ""); !isCode(err, "InvalidArgument") {
		t.Errorf("pod without name: %v", err)
	}
	if _, err := e.rs.RunPodSandbox(ctx, podConfig(t, "handler"), "kata"); !isCode(err, "InvalidArgument") {
		t.Errorf("unknown runtime handler: %v", err)
	}
	podCfg := hostNetworkPod(t, "dup")
	pod := e.runPod(podCfg)
	if _, err := e.rs.RunPodSandbox(ctx, podCfg, ""); !isCode(err, "AlreadyExists") {
		t.Errorf("same pod twice: %v", err)
	}
	e.pullBusybox()
	e.startContainer(pod, podCfg, containerConfig("c", "sleep", "100"))
	if _, err := e.rs.CreateContainer(ctx, pod, containerConfig("c", "true"), podCfg); !isCode(err, "AlreadyExists") {
		t.Errorf("same container name twice: %v", err)
	}
	if _, err := e.rs.CreateContainer(ctx, pod, &runtimeapi.ContainerConfig{Image: &runtimeapi.ImageSpec{Image: busyboxImage}}, podCfg); !isCode(err, "InvalidArgument") {
		t.Errorf("container without metadata: %v", err)
	}
	unknown := strings.Repeat("0", 64)
	if _, err := e.rs.PodSandboxStatus(ctx, unknown, false); !isCode(err, "NotFound") {
		t.Errorf("status of unknown pod: %v", err)
	}
	if _, err := e.rs.ContainerStatus(ctx, unknown, false); !isCode(err, "NotFound") {
		t.Errorf("status of unknown container: %v", err)
	}
	if err := e.rs.StartContainer(ctx, unknown); !isCode(err, "NotFound") {
		t.Errorf("start unknown container: %v", err)
	}
	if _, err := e.rs.CreateContainer(ctx, unknown, containerConfig("x", "true"), podCfg); !isCode(err, "NotFound") {
		t.Errorf("container in unknown pod: %v", err)
	}
	for name, err := range map[string]error{
		"StopContainer":    e.rs.StopContainer(ctx, unknown, 0),
		"RemoveContainer":  e.rs.RemoveContainer(ctx, unknown),
		"StopPodSandbox":   e.rs.StopPodSandbox(ctx, unknown),
		"RemovePodSandbox": e.rs.RemovePodSandbox(ctx, unknown),
	} {
		if err != nil {
			t.Errorf("%s on an unknown ID: %v", name, err)
		}
	}
	if _, err := e.rs.ContainerStats(ctx, unknown); !isCode(err, "NotFound") {
		t.Errorf("ContainerStats on an unknown ID: %v, want NotFound", err)
	}
}

func TestNetworkNotReadyWithoutConfig(t *testing.T) {
	confDir := t.TempDir()
	e := newEnv(t, withCNIConfDir(confDir))
	st, err := e.rs.Status(e.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		switch c.Type {
		case runtimeapi.RuntimeReady:
			if !c.Status {
				t.Errorf("runtime not ready: %v", c)
			}
		case runtimeapi.NetworkReady:
			if c.Status || !strings.Contains(c.Message, confDir) {
				t.Errorf("network condition %v, want not ready naming %s", c, confDir)
			}
		}
	}
	// Host-network pods do not need CNI.
	podCfg := hostNetworkPod(t, "hostnet")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	ctr := e.startContainer(pod, podCfg, containerConfig("c", "sleep", "100"))
	host, _ := os.Hostname()
	if out, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"hostname"}, 0); err != nil || strings.TrimSpace(string(out)) != host {
		t.Errorf("hostname in host-network pod: %q %v, want %q", out, err, host)
	}
	if _, err := e.rs.RunPodSandbox(e.ctx, podConfig(t, "needscni"), ""); err == nil {
		t.Error("pod network without CNI config succeeded")
	}
	e.assertClean("pod without CNI config", pod, ctr)
}

func TestStopPodSandboxAfterCNIConfigRemoved(t *testing.T) {
	confDir := t.TempDir()
	conf := filepath.Join(confDir, "10-kcridtest.conflist")
	if err := os.WriteFile(conf, []byte(bridgeConfig(t.TempDir())), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withCNIConfDir(confDir))
	pod := e.runPod(podConfig(t, "confgone"))
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatalf("StopPodSandbox without a CNI config: %v", err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.assertClean("pod removed without CNI config")
}
