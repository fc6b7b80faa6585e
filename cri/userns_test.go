package cri_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestUserNamespaceModes: a pod in the host's user namespace (NODE) runs;
// requests no runtime can honour as asked are refused with InvalidArgument
// before anything is made, whether or not this node offers user namespaces.
func TestUserNamespaceModes(t *testing.T) {
	e := newEnv(t)
	mapping := func(containerID, hostID, length uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: containerID, HostId: hostID, Length: length}}
	}
	valid := mapping(0, 1000, 100000)
	for _, tc := range []struct {
		name        string
		userns      *runtimeapi.UserNamespace
		hostNetwork bool
	}{
		{"container-mode", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}, false},
		{"target-mode", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}, false},
		{"two-mappings", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD,
			Uids: append(mapping(0, 1000, 100000), mapping(0, 2000, 100000)...),
			Gids: append(mapping(0, 1000, 100000), mapping(0, 2000, 100000)...)}, false},
		{"root-unmapped", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping(1, 1000, 100000), Gids: mapping(1, 1000, 100000)}, false},
		{"no-gid-mapping", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: valid}, false},
		{"empty-range", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping(0, 1000, 0), Gids: valid}, false},
		{"past-last-id", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping(0, 4294967295, 2), Gids: valid}, false},
		{"node-with-mappings", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: valid, Gids: valid}, true},
		{"pod-on-host-network", &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: valid, Gids: valid}, true},
	} {
		cfg := podConfig(t, "userns-"+tc.name)
		if tc.hostNetwork {
			cfg = hostNetworkPod(t, "userns-"+tc.name)
		}
		if cfg.Linux.SecurityContext == nil {
			cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{}
		}
		if cfg.Linux.SecurityContext.NamespaceOptions == nil {
			cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
		}
		cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = tc.userns
		if _, err := e.rs.RunPodSandbox(e.ctx, cfg, ""); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: RunPodSandbox: %v, want InvalidArgument", tc.name, err)
		}
	}
	e.assertClean("refused user namespace requests")

	// No user namespace options at all (mode's zero value is POD) means
	// the host's, as before kubelets knew of user namespaces.
	unset := podConfig(t, "userns-unset")
	unset.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}
	e.runPod(unset)

	e.pullBusybox()
	podCfg := hostNetworkPod(t, "userns-node")
	podCfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	pod := e.runPod(podCfg)
	ctr := e.startContainer(pod, podCfg, containerConfig("userns", "sleep", "100"))
	host, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"cat", "/proc/self/uid_map"}, 10*time.Second)
	if err != nil || string(out) != string(host) {
		t.Errorf("uid_map in a NODE user namespace: %q %v, want the host's %q", out, err, host)
	}
}

// usernsAdvertised reads the runtime handlers' user_namespaces feature and
// the reason kcrid gives in verbose Status.
func (e *env) usernsAdvertised() (bool, string) {
	e.t.Helper()
	resp, err := e.rs.Status(e.ctx, true)
	if err != nil {
		e.t.Fatal(err)
	}
	advertised := true
	for _, h := range resp.GetRuntimeHandlers() {
		advertised = advertised && h.GetFeatures().GetUserNamespaces()
	}
	var info struct {
		UserNamespaces struct {
			RootfsRemap string `json:"rootfsRemap"`
			Unsupported string `json:"unsupported"`
		} `json:"userNamespaces"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["config"]), &info); err != nil {
		e.t.Fatalf("verbose status info: %v", err)
	}
	return advertised, info.UserNamespaces.RootfsRemap + info.UserNamespaces.Unsupported
}

// TestUserNamespacePod: a pod in a user namespace of its own, on a node
// that advertises it. Its containers share the pod's user namespace with
// the requested mapping, their root owns the rootfs and the pod's files,
// the pod network works in the namespace the pause task made, and removing
// the pod leaves nothing behind. Where the node does not advertise the
// feature, POD mode must be refused as Unimplemented.
func TestUserNamespacePod(t *testing.T) {
	e := newEnv(t)
	advertised, detail := e.usernsAdvertised()
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}
	userns := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping}
	podCfg := podConfig(t, "userns-pod")
	podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: userns},
	}
	if !advertised {
		if _, err := e.rs.RunPodSandbox(e.ctx, podCfg, ""); status.Code(err) != codes.Unimplemented {
			t.Errorf("POD user namespace on a node without the feature: %v, want Unimplemented", err)
		}
		t.Skipf("this node does not offer user namespaces: %s", detail)
	}
	t.Logf("user namespaces: rootfs by %s", detail)

	e.pullBusybox()
	pod := e.runPod(podCfg)
	ctrCfg := containerConfig("userns-app", "sleep", "100")
	ctrCfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: userns},
	}
	app := e.startContainer(pod, podCfg, ctrCfg)
	other := e.startContainer(pod, podCfg, containerConfig("userns-other", "sleep", "100"))

	run := func(ctr string, cmd string) string {
		t.Helper()
		return e.execOK(ctr, "sh", "-c", cmd)
	}
	if got := strings.Fields(run(app, "cat /proc/self/uid_map")); strings.Join(got, " ") != "0 200000 65536" {
		t.Errorf("uid_map in the pod: %v, want 0 200000 65536", got)
	}
	if got := strings.Fields(run(app, "cat /proc/self/gid_map")); strings.Join(got, " ") != "0 200000 65536" {
		t.Errorf("gid_map in the pod: %v, want 0 200000 65536", got)
	}
	if a, b := run(app, "readlink /proc/self/ns/user"), run(other, "readlink /proc/self/ns/user"); a != b {
		t.Errorf("containers of one pod in different user namespaces: %s, %s", a, b)
	}
	// The rootfs and the pod's files belong to the pod's root, who can
	// write them (without a remapped rootfs they would show as 65534).
	if got := run(app, "stat -c %u:%g / /bin /etc/hosts /etc/hostname /etc/resolv.conf | sort -u"); got != "0:0" {
		t.Errorf("owners seen in the pod: %q, want 0:0", got)
	}
	if got := run(app, "touch /written && echo 10.0.0.1 extra >> /etc/hosts && echo ok"); got != "ok" {
		t.Errorf("root of the pod writing its rootfs and /etc/hosts: %q", got)
	}
	// sysfs mounted, and the pod network is up in the pause's namespace.
	if got := run(app, "ls /sys/class/net | sort | tr '\\n' ' '"); !strings.Contains(got, "eth0") {
		t.Errorf("network devices in the pod: %q, want eth0", got)
	}
	st, err := e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil || st.GetStatus().GetNetwork().GetIp() == "" {
		t.Fatalf("pod status: %v %v, want an IP", st, err)
	}
	if got := run(other, "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'"); got != "inet "+st.GetStatus().GetNetwork().GetIp() {
		t.Errorf("pod address inside: %q, want inet %s", got, st.GetStatus().GetNetwork().GetIp())
	}

	// A container cannot leave the pod's user namespace or change it.
	for name, ns := range map[string]*runtimeapi.UserNamespace{
		"node":  {Mode: runtimeapi.NamespaceMode_NODE},
		"other": {Mode: runtimeapi.NamespaceMode_POD, Uids: []*runtimeapi.IDMapping{{HostId: 300000, Length: 65536}}, Gids: mapping},
	} {
		cfg := containerConfig("userns-"+name, "true")
		cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: ns}}
		if _, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg); status.Code(err) != codes.InvalidArgument {
			t.Errorf("container with user namespace %s in a POD-mode pod: %v, want InvalidArgument", name, err)
		}
	}

	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	e.assertClean("removed user namespace pod")
	if left := e.collectedSnapshotsBesidesLayers(); len(left) > 0 {
		t.Errorf("snapshots left after removing the pod and collecting garbage: %v", left)
	}
}

// collectedSnapshotsBesidesLayers runs containerd's garbage collector and
// lists the committed snapshots left that are no unpacked image layer (a
// chowned copy of the layers made for a user namespace must go with the
// last container on it).
func (e *env) collectedSnapshotsBesidesLayers() []string {
	e.t.Helper()
	cl, err := daemon.Client(e.ctx, "")
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	// Deleting a lease synchronously waits for a collection.
	lease, err := cl.LeasesService().Create(e.ctx, leases.WithRandomID())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cl.LeasesService().Delete(e.ctx, lease, leases.SynchronousDelete); err != nil {
		e.t.Fatal(err)
	}
	var left []string
	err = cl.SnapshotService("overlayfs").Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
		if _, layer := info.Labels["containerd.io/snapshot.ref"]; !layer && info.Labels["io.kcrid/pause-rootfs"] == "" {
			left = append(left, info.Name)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return left
}

// TestUserNamespacePodsSameMapping: pods started at once with the same
// mapping all run (where kcrid makes chowned copies of the layers, they
// share one), and removing them leaves no snapshot behind.
func TestUserNamespacePodsSameMapping(t *testing.T) {
	e := newEnv(t)
	if advertised, detail := e.usernsAdvertised(); !advertised {
		t.Skipf("this node does not offer user namespaces: %s", detail)
	}
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 400000, Length: 65536}}
	const pods = 3
	errs := make(chan error, pods)
	for i := range pods {
		cfg := podConfig(t, fmt.Sprintf("userns-same-%d", i))
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping},
		}}
		go func() {
			_, err := e.rs.RunPodSandbox(e.ctx, cfg, "")
			errs <- err
		}()
	}
	for range pods {
		if err := <-errs; err != nil {
			t.Errorf("RunPodSandbox: %v", err)
		}
	}
	e.removeAll()
	e.assertClean("removed user namespace pods")
	if left := e.collectedSnapshotsBesidesLayers(); len(left) > 0 {
		t.Errorf("snapshots left after removing the pods and collecting garbage: %v", left)
	}
}
