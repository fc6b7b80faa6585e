package images_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// One containerd serves the whole package; each test works in a namespace
// of its own so tests cannot see each other's images.
var daemon *testenv.Containerd
var daemonErr error

func TestMain(m *testing.M) {
	if path := os.Getenv(listenHelperEnv); path != "" {
		listenHelper(path)
	}
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

// env is what an integration test gets: a client and a context in a fresh
// namespace that is emptied when the test ends.
type env struct {
	ctx    context.Context
	client *containerd.Client
}

func newEnv(t *testing.T) env {
	t.Helper()
	testenv.Require(t, daemonErr == nil, "containerd: %v", daemonErr)
	ctx := namespaces.WithNamespace(context.Background(), testenv.Namespace(t))
	client, err := daemon.Client(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return env{ctx: ctx, client: client}
}

func builder() *testimages.Builder {
	return testimages.NewBuilder("")
}
