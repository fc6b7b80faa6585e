package testenv

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerdCRI checks that EnableCRI really serves CRI on the same
// socket, with our runtime/CNI settings, and that Stop still cleans up.
func TestContainerdCRI(t *testing.T) {
	RequireRoot(t)
	for _, v := range []string{"1.6", "2.4"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			c := NewContainerd(t, ContainerdOptions{Version: v, EnableCRI: true, SandboxImage: "127.0.0.1:1/pause:3.9"})
			conn, err := grpc.NewClient("unix://"+c.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rs := runtimeapi.NewRuntimeServiceClient(conn)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// The CRI plugin finishes initialising after the socket is up.
			var ver *runtimeapi.VersionResponse
			for {
				ver, err = rs.Version(ctx, &runtimeapi.VersionRequest{})
				if err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("CRI Version: %v\n%s", err, c.LogTail(30))
			}
			if ver.RuntimeName != "containerd" || !strings.HasPrefix(strings.TrimPrefix(ver.RuntimeVersion, "v"), v) {
				t.Errorf("CRI version %+v", ver)
			}
			st, err := rs.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.Info["config"]
			wants := []string{c.RuncRoot(), c.Dir() + "/cni/net.d", `"restrictOOMScoreAdj":true`, `"netnsMountsUnderStateDir":true`}
			if v == "1.6" { // 2.4 keeps image settings out of this dump
				wants = append(wants, "127.0.0.1:1/pause:3.9")
			}
			for _, want := range wants {
				if !strings.Contains(cfg, want) {
					t.Errorf("CRI config lacks %q: %s", want, cfg)
				}
			}
			if _, err := os.Stat(c.Dir() + "/cni/net.d"); err != nil {
				t.Error(err)
			}
			assertConfigAccepted(t, c)
		})
	}
}
