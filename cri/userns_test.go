package cri_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestUserNamespaceModes: a pod in the host's user namespace (NODE) runs;
// one asking for a namespace of its own is refused rather than silently
// given the host's, since kcrid does not offer CRI user namespaces.
func TestUserNamespaceModes(t *testing.T) {
	e := newEnv(t)
	mapping := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 100000}}
	for _, userns := range []*runtimeapi.UserNamespace{
		{Mode: runtimeapi.NamespaceMode_POD, Uids: mapping, Gids: mapping},
		{Mode: runtimeapi.NamespaceMode_CONTAINER},
		{Mode: runtimeapi.NamespaceMode_TARGET},
	} {
		cfg := hostNetworkPod(t, "userns-"+strings.ToLower(userns.Mode.String()))
		cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns
		if _, err := e.rs.RunPodSandbox(e.ctx, cfg, ""); status.Code(err) != codes.Unimplemented {
			t.Errorf("pod with user namespace mode %s: %v, want Unimplemented", userns.Mode, err)
		}
	}

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
