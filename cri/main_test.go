package cri_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/cri"
	"github.com/kctr/kctr/crilog"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// The integration tests share one containerd (1.6 or 2.4 after
// KCTR_TEST_CONTAINERD), one in-process registry serving the pause and
// busybox images under their usual names through a _default mirror, and
// one CNI bridge config (bridge kcridtest0, 10.231.0.0/16, unless moved). Each test runs
// its own kcrid server in its own containerd namespace.
var (
	daemon   *testenv.Containerd
	setupErr error
	shared   struct {
		hostsDir   string
		cniConfDir string
		ipamDir    string
	}
)

const (
	pauseImage   = "registry.k8s.io/pause:3.10"
	busyboxImage = "docker.io/library/busybox:1.36"
	userImage    = "docker.io/library/busybox:user1002"
)

// The bridge and subnet can be moved (KCRID_TEST_BRIDGE, KCRID_TEST_SUBNET)
// so that two runs of this package on one host do not share a bridge.
var (
	testBridge = envOr("KCRID_TEST_BRIDGE", "kcridtest0")
	testSubnet = envOr("KCRID_TEST_SUBNET", "10.231.0.0/16")
)

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func TestMain(m *testing.M) {
	// The shims start this test binary as the container log writer.
	if crilog.IsWriterInvocation(os.Args) {
		os.Exit(crilog.RunWriter(os.Args))
	}
	flag.Parse()
	var cleanup func()
	if !testing.Short() && os.Geteuid() == 0 {
		cleanup, setupErr = setup()
	} else {
		setupErr = fmt.Errorf("integration tests need root and no -short")
	}
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	for _, dir := range podLogDirs.dirs {
		_ = os.RemoveAll(dir)
	}
	if daemon != nil {
		if err := daemon.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func setup() (func(), error) {
	ctx := context.Background()
	var err error
	daemon, err = testenv.StartContainerd(ctx, testenv.ContainerdOptions{})
	if err != nil {
		return nil, err
	}
	reg := testenv.StartRegistry(testenv.RegistryOptions{})
	b := testimages.NewBuilder("")
	pause, err := b.Pause()
	if err != nil {
		return reg.Close, err
	}
	busybox, err := b.Busybox()
	if err != nil {
		return reg.Close, err
	}
	if err := testimages.Push(ctx, pause, reg.Host()+"/pause:3.10"); err != nil {
		return reg.Close, err
	}
	if err := testimages.Push(ctx, busybox, reg.Host()+"/library/busybox:1.36"); err != nil {
		return reg.Close, err
	}
	withUser, err := testimages.WithUser(busybox, "1002")
	if err != nil {
		return reg.Close, err
	}
	if err := testimages.Push(ctx, withUser, reg.Host()+"/library/busybox:user1002"); err != nil {
		return reg.Close, err
	}
	dir, err := os.MkdirTemp("", "kcrid-test-")
	if err != nil {
		return reg.Close, err
	}
	shared.hostsDir = filepath.Join(dir, "certs.d")
	shared.cniConfDir = filepath.Join(dir, "net.d")
	shared.ipamDir = filepath.Join(dir, "ipam")
	if err := testenv.WriteDefaultMirror(shared.hostsDir, reg.Host()); err != nil {
		return reg.Close, err
	}
	if err := writeFile(filepath.Join(shared.cniConfDir, "10-kcridtest.conflist"), bridgeConfig(shared.ipamDir)); err != nil {
		return reg.Close, err
	}
	return func() {
		reg.Close()
		removeBridge()
		removeCgroupParents()
		os.RemoveAll(dir)
	}, nil
}

func bridgeConfig(ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kcridtest",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, testBridge, testSubnet, ipamDir)
}

// removeBridge deletes the test bridge and the empty nat chains the bridge
// plugin leaves behind (docs/testing.md).
func removeBridge() {
	_ = testenv.RemoveBridge(testBridge, "")
	_ = testenv.PruneEmptyCNIChains()
}

// removeCgroupParents removes the empty /kcrid cgroups (the default parent
// of pods without one); a non-empty one stays.
func removeCgroupParents() {
	_ = testenv.RemoveCgroup("/kcrid")
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// env is one test's kcrid: its config (kept for restarts), the running
// server and CRI clients talking to it over its unix socket.
type env struct {
	t       *testing.T
	ctx     context.Context
	cfg     cri.Config
	socket  string
	server  *cri.Server
	rs      internalapi.RuntimeService
	is      internalapi.ImageManagerService
	stopped bool
}

type envOption func(*cri.Config)

func withCNIConfDir(dir string) envOption { return func(c *cri.Config) { c.CNIConfDir = dir } }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	testenv.Require(t, setupErr == nil, "setup: %v", setupErr)
	ns := testenv.Namespace(t)
	dir, err := os.MkdirTemp("", "kcrid-")
	if err != nil {
		t.Fatal(err)
	}
	runc := daemon.RuncOptions()
	cfg := cri.Config{
		ContainerdAddress: daemon.Address(),
		Namespace:         ns,
		RootDir:           filepath.Join(dir, "root"),
		StateDir:          filepath.Join(dir, "state"),
		SandboxImage:      pauseImage,
		CNIBinDirs:        []string{"/usr/lib/cni"},
		CNIConfDir:        shared.cniConfDir,
		HostsDir:          shared.hostsDir,
		Runtime:           cri.RuntimeOptions{Root: runc.Root, BinaryName: runc.BinaryName},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e := &env{t: t, ctx: namespaces.WithNamespace(context.Background(), ns), cfg: cfg, socket: filepath.Join(dir, "kcrid.sock")}
	e.start()
	t.Cleanup(func() {
		if e.stopped {
			e.start()
		}
		e.removeAll()
		e.stop()
		os.RemoveAll(dir)
	})
	return e
}

// start runs a kcrid server on the env's config and socket.
func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server, err := cri.New(ctx, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := cri.Listen("unix://" + e.socket)
	if err != nil {
		server.Stop()
		e.t.Fatal(err)
	}
	go func() { _ = server.Serve(l) }()
	e.server = server
	e.rs, err = remote.NewRemoteRuntimeService(ctx, "unix://"+e.socket, 30*time.Second, nil, false)
	if err != nil {
		e.t.Fatal(err)
	}
	e.is, err = remote.NewRemoteImageService(ctx, "unix://"+e.socket, 60*time.Second, nil, false)
	if err != nil {
		e.t.Fatal(err)
	}
	e.stopped = false
}

// stop stops serving, as SIGTERM does: containers keep running.
func (e *env) stop() {
	e.server.Stop()
	e.stopped = true
}

// removeAll removes every pod through the CRI, so CNI DEL releases IPs.
func (e *env) removeAll() {
	ctx := context.Background()
	pods, err := e.rs.ListPodSandbox(ctx, nil)
	if err != nil {
		e.t.Errorf("cleanup: list pods: %v", err)
		return
	}
	for _, p := range pods {
		if err := e.rs.RemovePodSandbox(ctx, p.Id); err != nil {
			e.t.Errorf("cleanup: remove pod %s: %v", p.Id, err)
		}
	}
}

// podLogDirs are the pods' log dirs, removed once every test is done. A
// t.TempDir would be removed before the env's cleanup stops the pod's
// containers, and a running container's log writer recreates its file
// (it follows rotation), so the removal could fail.
var podLogDirs struct {
	sync.Mutex
	dirs []string
}

func podLogDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kcrid-logs-")
	if err != nil {
		t.Fatal(err)
	}
	podLogDirs.Lock()
	podLogDirs.dirs = append(podLogDirs.dirs, dir)
	podLogDirs.Unlock()
	return dir
}

func podConfig(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Hostname:     name,
		LogDirectory: podLogDir(t),
		Labels:       map[string]string{"app": name},
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.231.0.10"}, Searches: []string{"svc.test"}, Options: []string{"ndots:5"}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func hostNetworkPod(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	cfg := podConfig(t, name)
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	return cfg
}

func containerConfig(name string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
		Command:  cmd,
		LogPath:  name + "/0.log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

func (e *env) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	id, err := e.rs.RunPodSandbox(e.ctx, cfg, "")
	if err != nil {
		e.t.Fatalf("RunPodSandbox: %v", err)
	}
	return id
}

func (e *env) pullBusybox() {
	e.t.Helper()
	if _, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}, nil, nil); err != nil {
		e.t.Fatalf("PullImage: %v", err)
	}
}

// startContainer creates and starts a container in pod.
func (e *env) startContainer(pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	id, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg)
	if err != nil {
		e.t.Fatalf("CreateContainer: %v", err)
	}
	if err := e.rs.StartContainer(e.ctx, id); err != nil {
		e.t.Fatalf("StartContainer: %v", err)
	}
	return id
}

// execOK runs cmd in container id and returns its trimmed stdout; a
// failure or non-zero exit fails the test.
func (e *env) execOK(id string, cmd ...string) string {
	e.t.Helper()
	stdout, stderr, err := e.rs.ExecSync(e.ctx, id, cmd, 10*time.Second)
	if err != nil {
		e.t.Fatalf("exec %v in %s: %v (stderr %q)", cmd, id, err, stderr)
	}
	return strings.TrimSpace(string(stdout))
}

// waitState waits up to 10s for a container state.
func (e *env) waitState(id string, want runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.rs.ContainerStatus(e.ctx, id, false)
		if err != nil {
			e.t.Fatalf("ContainerStatus: %v", err)
		}
		if resp.Status.State == want {
			return resp.Status
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s is %s, want %s", id, resp.Status.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
