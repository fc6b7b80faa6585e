package containers_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// One containerd serves the package; each test has its own namespace.
var daemon *testenv.Containerd
var daemonErr error

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() && os.Geteuid() == 0 {
		daemon, daemonErr = testenv.StartContainerd(context.Background(), testenv.ContainerdOptions{})
	} else {
		daemonErr = fmt.Errorf("integration tests need root and no -short")
	}
	code := m.Run()
	if daemon != nil {
		if err := daemon.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

type env struct {
	ctx     context.Context
	client  *containerd.Client
	images  *images.Service
	manager *containers.Manager
}

const busyboxRef = "localhost/kctr/busybox:test"

// newEnv gives a test a namespace holding the busybox image, imported from
// an OCI archive built offline.
func newEnv(t *testing.T) env {
	t.Helper()
	testenv.Require(t, daemonErr == nil, "containerd: %v", daemonErr)
	ctx := namespaces.WithNamespace(context.Background(), testenv.Namespace(t))
	client, err := daemon.Client(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	imageService := images.NewService(client, images.ServiceOptions{})
	img, err := testimages.NewBuilder("").Busybox()
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := testimages.WriteOCIArchive(img, archive, busyboxRef); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := imageService.Import(ctx, f, images.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	manager := containers.NewManager(client, imageService, containers.ManagerOptions{RuntimeOptions: daemon.RuncOptions()})
	return env{ctx: ctx, client: client, images: imageService, manager: manager}
}
