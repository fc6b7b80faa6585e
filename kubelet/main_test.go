package kubelet_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/cri"
	"github.com/kctr/kctr/crilog"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
	"github.com/kctr/kctr/kubelet"
)

// The integration tests run kubelet-lite in-process against two CRI
// runtimes on one containerd version (KCTR_TEST_CONTAINERD): our kcrid
// (in-process, on a private containerd without its CRI plugin, one
// containerd namespace per test) and containerd's own CRI plugin (a second
// private daemon). One in-process registry serves the pause and busybox
// images under their usual names; one CNI bridge (kletest0, 10.243.0.0/16)
// is used by both runtimes.
const (
	pauseImage   = "registry.k8s.io/pause:3.10"
	busyboxImage = "docker.io/library/busybox:1.36"
	testBridge   = "kletest0"
	testSubnet   = "10.243.0.0/16"
	testNetwork  = "kletest"
	nodeName     = "kletest-node"
)

var (
	setupErr error
	// kcridDaemon is the containerd kcrid servers run on; criDaemon serves
	// containerd's own CRI.
	kcridDaemon, criDaemon *testenv.Containerd
	shared                 struct {
		dir        string
		hostsDir   string
		cniConfDir string
	}
)

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
	for _, d := range []*testenv.Containerd{kcridDaemon, criDaemon} {
		if d == nil {
			continue
		}
		if err := d.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

func setup() (func(), error) {
	ctx := context.Background()
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
	dir, err := os.MkdirTemp("", "kubelet-lite-test-")
	if err != nil {
		return reg.Close, err
	}
	cleanup := func() {
		reg.Close()
		_ = testenv.RemoveBridge(testBridge, "")
		_ = testenv.PruneEmptyCNIChains()
		os.RemoveAll(dir)
	}
	shared.dir = dir
	shared.hostsDir = filepath.Join(dir, "certs.d")
	shared.cniConfDir = filepath.Join(dir, "net.d")
	// kcrid reads the _default mirror; containerd 1.6's CRI wants one dir
	// per registry host, so those are written too.
	if err := testenv.WriteDefaultMirror(shared.hostsDir, reg.Host()); err != nil {
		return cleanup, err
	}
	mirror := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", reg.URL())
	for _, host := range []string{"registry.k8s.io", "docker.io"} {
		if err := writeFile(filepath.Join(shared.hostsDir, host, "hosts.toml"), mirror); err != nil {
			return cleanup, err
		}
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, testNetwork, testBridge, testSubnet, filepath.Join(dir, "ipam"))
	if err := writeFile(filepath.Join(shared.cniConfDir, "10-kletest.conflist"), conf); err != nil {
		return cleanup, err
	}
	kcridDaemon, err = testenv.StartContainerd(ctx, testenv.ContainerdOptions{})
	if err != nil {
		return cleanup, err
	}
	criDaemon, err = testenv.StartContainerd(ctx, testenv.ContainerdOptions{
		EnableCRI: true, CNIBinDir: "/usr/lib/cni", CNIConfDir: shared.cniConfDir,
		SandboxImage: pauseImage, HostsDir: shared.hostsDir,
	})
	if err != nil {
		return cleanup, err
	}
	return cleanup, nil
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// criRuntime is a CRI runtime under test.
type criRuntime struct {
	name string
	rs   internalapi.RuntimeService
	is   internalapi.ImageManagerService
}

func connect(t *testing.T, endpoint string) (internalapi.RuntimeService, internalapi.ImageManagerService) {
	t.Helper()
	ctx := context.Background()
	rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 30*time.Second, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	is, err := remote.NewRemoteImageService(ctx, endpoint, 60*time.Second, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return rs, is
}

// newKcrid runs a kcrid server in its own containerd namespace; cleanup
// removes every pod through the CRI (so CNI DEL releases the IPs).
func newKcrid(t *testing.T) *criRuntime {
	t.Helper()
	testenv.Require(t, setupErr == nil, "setup: %v", setupErr)
	dir, err := os.MkdirTemp("", "klk-")
	if err != nil {
		t.Fatal(err)
	}
	runc := kcridDaemon.RuncOptions()
	cfg := cri.Config{
		ContainerdAddress: kcridDaemon.Address(),
		Namespace:         testenv.Namespace(t),
		RootDir:           filepath.Join(dir, "root"),
		StateDir:          filepath.Join(dir, "state"),
		SandboxImage:      pauseImage,
		CNIBinDirs:        []string{"/usr/lib/cni"},
		CNIConfDir:        shared.cniConfDir,
		HostsDir:          shared.hostsDir,
		Runtime:           cri.RuntimeOptions{Root: runc.Root, BinaryName: runc.BinaryName},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server, err := cri.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "kcrid.sock")
	l, err := cri.Listen("unix://" + socket)
	if err != nil {
		server.Stop()
		t.Fatal(err)
	}
	go func() { _ = server.Serve(l) }()
	rt := &criRuntime{name: "kcrid"}
	rt.rs, rt.is = connect(t, "unix://"+socket)
	t.Cleanup(func() {
		removeAllPods(t, rt.rs)
		server.Stop()
		os.RemoveAll(dir)
	})
	return rt
}

// newContainerdCRI connects to the containerd with its CRI plugin; cleanup
// removes every pod through the CRI (the daemon's Stop would too).
func newContainerdCRI(t *testing.T) *criRuntime {
	t.Helper()
	testenv.Require(t, setupErr == nil, "setup: %v", setupErr)
	rt := &criRuntime{name: "containerd " + criDaemon.Version()}
	rt.rs, rt.is = connect(t, "unix://"+criDaemon.Address())
	// The CRI plugin starts serving a moment after the daemon answers.
	waitFor(t, 30*time.Second, "containerd's CRI to answer", func() (bool, string) {
		_, err := rt.rs.Version(context.Background(), "v1")
		return err == nil, fmt.Sprint(err)
	})
	t.Cleanup(func() { removeAllPods(t, rt.rs) })
	return rt
}

func removeAllPods(t *testing.T, rs internalapi.RuntimeService) {
	ctx := context.Background()
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil {
		t.Errorf("cleanup: list pods: %v", err)
		return
	}
	for _, p := range pods {
		_ = rs.StopPodSandbox(ctx, p.Id)
		if err := rs.RemovePodSandbox(ctx, p.Id); err != nil {
			t.Errorf("cleanup: remove pod %s: %v", p.Id, err)
		}
	}
}

// agent is one kubelet-lite run against a runtime, with its dirs (kept
// across restarts of the agent) and its HTTP API on a test server.
type agent struct {
	t         *testing.T
	rt        *criRuntime
	manifests string
	logs      string
	root      string
	cfg       kubelet.Config

	agent  *kubelet.Agent
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

type agentOption func(*kubelet.Config)

func removeForeign(c *kubelet.Config) { c.RemoveForeign = true }

func newAgent(t *testing.T, rt *criRuntime, opts ...agentOption) *agent {
	dir := t.TempDir()
	a := &agent{t: t, rt: rt, manifests: filepath.Join(dir, "manifests"), logs: filepath.Join(dir, "logs"), root: filepath.Join(dir, "root")}
	if err := os.MkdirAll(a.manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	a.cfg = kubelet.Config{
		ManifestDir: a.manifests, RootDir: a.root, PodLogsDir: a.logs, NodeName: nodeName,
		SyncFrequency: 5 * time.Second, RelistPeriod: 200 * time.Millisecond, FileCheckFrequency: 200 * time.Millisecond,
		Backoff: kubelet.Backoff{Initial: 300 * time.Millisecond, Max: 2 * time.Second, Reset: time.Minute},
		Runtime: rt.rs, Images: rt.is,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	for _, o := range opts {
		o(&a.cfg)
	}
	t.Cleanup(a.stop)
	return a
}

// testWriter sends the agent's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (a *agent) start() {
	a.t.Helper()
	k, err := kubelet.New(a.cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.agent, a.cancel, a.done = k, cancel, make(chan error, 1)
	a.srv = httptest.NewServer(k.Handler())
	go func() { a.done <- k.Run(ctx) }()
}

// stop ends the agent as SIGTERM does: pods keep running.
func (a *agent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	if err := <-a.done; err != nil {
		a.t.Errorf("agent: %v", err)
	}
	a.srv.Close()
	a.cancel = nil
}

func (a *agent) writeManifest(name, content string) {
	a.t.Helper()
	// Written aside and renamed, so the agent never reads half a file.
	tmp := filepath.Join(a.manifests, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.manifests, name)); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agent) removeManifest(name string) {
	a.t.Helper()
	if err := os.Remove(filepath.Join(a.manifests, name)); err != nil {
		a.t.Fatal(err)
	}
}

// pods is GET /pods.
func (a *agent) pods() v1.PodList {
	a.t.Helper()
	resp, err := http.Get(a.srv.URL + "/pods")
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var list v1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		a.t.Fatalf("decode /pods: %v\n%s", err, body)
	}
	return list
}

func (a *agent) pod(name string) *v1.Pod {
	for _, p := range a.pods().Items {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

// waitPod waits until the pod's /pods entry satisfies cond.
func (a *agent) waitPod(name, what string, timeout time.Duration, cond func(p *v1.Pod) bool) *v1.Pod {
	a.t.Helper()
	var last *v1.Pod
	waitFor(a.t, timeout, fmt.Sprintf("pod %s: %s", name, what), func() (bool, string) {
		last = a.pod(name)
		if last == nil {
			return false, "not listed"
		}
		b, _ := json.Marshal(last.Status)
		return cond(last), string(b)
	})
	return last
}

// sandboxes lists the runtime's sandboxes of a pod name.
func (rt *criRuntime) sandboxes(t *testing.T, name string) []*runtimeapi.PodSandbox {
	t.Helper()
	list, err := rt.rs.ListPodSandbox(context.Background(), &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.name": name}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (rt *criRuntime) containers(t *testing.T, pod, container string) []*runtimeapi.Container {
	t.Helper()
	list, err := rt.rs.ListContainers(context.Background(), &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.name": pod, "io.kubernetes.container.name": container}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func podReady(p *v1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}
