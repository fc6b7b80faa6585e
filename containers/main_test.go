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
// Containers on the bridge network use a bridge of the package's own
// (never kctr's default kctr0) with its CNI config and network namespaces
// in a temp dir, as is the data root (logs); all removed at the end.
var (
	daemon    *testenv.Containerd
	daemonErr error
	network   containers.NetworkOptions
	dataRoot  string
)

const (
	testBridge = "kctrunit0"
	testSubnet = "10.250.0.0/24"
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "kctr-containers-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dataRoot = filepath.Join(dir, "data")
	network = containers.NetworkOptions{ConfDir: filepath.Join(dir, "cni"), NetNSDir: filepath.Join(dir, "netns"),
		BridgeName: testBridge, Subnet: testSubnet}
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
		_ = testenv.RemoveNetworkRules("kctr-" + testBridge)
		if err := testenv.RemoveBridge(testBridge, "kctr-"+testBridge); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		_ = testenv.PruneEmptyCNIChains()
	}
	if err := testenv.UnmountAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.RemoveAll(dir)
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
	manager := containers.NewManager(client, imageService, containers.ManagerOptions{RuntimeOptions: daemon.RuncOptions(), DataRoot: dataRoot, Network: network})
	return env{ctx: ctx, client: client, images: imageService, manager: manager}
}
