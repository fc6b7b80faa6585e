package images_test

import (
	"context"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/opencontainers/go-digest"
)

func mustImage(t *testing.T, e env, name string) containerd.Image {
	t.Helper()
	img, err := e.client.GetImage(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layerDigestOf(s string) digest.Digest { return digest.Digest(s) }

// assertNoSnapshots checks that the test's namespace holds no snapshot, so
// a failed operation left no rootfs layer behind.
func assertNoSnapshots(t *testing.T, e env) {
	t.Helper()
	var keys []string
	err := e.client.SnapshotService("overlayfs").Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
		keys = append(keys, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		t.Fatalf("snapshots left behind: %v", keys)
	}
}
