package scratch

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/internal/testenv"
)

func TestProbe(t *testing.T) {
	for _, v := range []string{"1.6", "2.4"} {
		c := testenv.NewContainerd(t, testenv.ContainerdOptions{Version: v, EnableCRI: v == "2.4", SandboxImage: "127.0.0.1:1/pause:3.9"})
		ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
		cl, err := c.Client(ctx, "k8s.io")
		if err != nil {
			t.Fatal(err)
		}
		caps, err := cl.GetSnapshotterCapabilities(ctx, "overlayfs")
		t.Logf("%s overlayfs caps: %v %v", v, caps, err)
		if v == "2.4" {
			conn, err := grpc.NewClient("unix://"+c.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			rs := runtimeapi.NewRuntimeServiceClient(conn)
			var resp *runtimeapi.StatusResponse
			for i := 0; i < 100; i++ {
				resp, err = rs.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(resp.RuntimeHandlers)
			t.Logf("handlers: %s", b)
			var cfg map[string]any
			_ = json.Unmarshal([]byte(resp.Info["config"]), &cfg)
			t.Logf("stateDir %v rootDir %v", cfg["stateDir"], cfg["rootDir"])
			out, _ := exec.Command("/work/main/.tools/bin/critest", "-runtime-endpoint", "unix://"+c.Address(), "-image-endpoint", "unix://"+c.Address(),
				"-ginkgo.focus", "UserNamespaces", "-ginkgo.v", "-ginkgo.no-color").CombinedOutput()
			t.Logf("critest:\n%s", out)
		}
	}
}
