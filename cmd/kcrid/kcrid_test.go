package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/cri-client/pkg/logs"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// kcridProc is the real kcrid binary running against a private containerd,
// with pause and busybox served under their usual names by an in-process
// registry through a _default mirror, and no CNI config (host-network
// pods only).
type kcridProc struct {
	t      *testing.T
	daemon *testenv.Containerd
	dir    string
	bin    string
	config string
	socket string
	cmd    *exec.Cmd
}

// procOptions tune newKcridProc.
type procOptions struct {
	// cniConfDir, when set, is given to kcrid (default: an empty dir).
	cniConfDir string
	// images are pushed to the registry too: "repo:tag" (path in the
	// registry, as the _default mirror maps every host) -> image.
	images map[string]v1.Image
	// nriSocket, when set, enables NRI on that socket (nri_test.go).
	nriSocket string
}

func newKcridProc(t *testing.T) *kcridProc {
	t.Helper()
	return newKcridProcWith(t, procOptions{})
}

func newKcridProcWith(t *testing.T, opts procOptions) *kcridProc {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	testenv.RequireRoot(t)
	daemon := testenv.NewContainerd(t, testenv.ContainerdOptions{})
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "kcrid-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	reg := testenv.NewRegistry(t, testenv.RegistryOptions{})
	b := testimages.NewBuilder("")
	pause, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(ctx, pause, reg+"/pause:3.10"); err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(ctx, busybox, reg+"/library/busybox:1.36"); err != nil {
		t.Fatal(err)
	}
	for ref, img := range opts.images {
		if err := testimages.Push(ctx, img, reg+"/"+ref); err != nil {
			t.Fatal(err)
		}
	}
	cniConfDir := opts.cniConfDir
	if cniConfDir == "" {
		cniConfDir = filepath.Join(dir, "net.d")
	}
	hostsDir := filepath.Join(dir, "certs.d")
	if err := testenv.WriteDefaultMirror(hostsDir, reg); err != nil {
		t.Fatal(err)
	}

	p := &kcridProc{t: t, daemon: daemon, dir: dir, bin: filepath.Join(dir, "kcrid"),
		config: filepath.Join(dir, "kcrid.toml"), socket: filepath.Join(dir, "kcrid.sock")}
	// The log writer beside kcrid, as installed.
	if out, err := exec.Command("go", "build", "-o", dir+"/", ".", "../kctr-logwriter").CombinedOutput(); err != nil {
		t.Fatalf("build kcrid: %v\n%s", err, out)
	}
	runc := daemon.RuncOptions()
	writeFile(t, p.config, fmt.Sprintf(`
listen = "unix://%s"
containerd_address = %q
containerd_namespace = "kcrid-e2e"
root = %q
state = %q
hosts_dir = %q
cni_conf_dir = %q
runc_root = %q
runc_binary = %q
log_level = "debug"
%s`, p.socket, daemon.Address(), filepath.Join(dir, "root"), filepath.Join(dir, "state"), hostsDir,
		cniConfDir, runc.Root, runc.BinaryName, nriTOML(opts.nriSocket, dir)))
	p.start()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// start runs kcrid and waits for its socket.
func (p *kcridProc) start() {
	t := p.t
	t.Helper()
	cmd := exec.Command(p.bin, "--config", p.config)
	logFile, err := os.OpenFile(filepath.Join(p.dir, "kcrid.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		if conn, err := net.Dial("unix", p.socket); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(p.dir, "kcrid.log"))
			t.Fatalf("kcrid did not come up:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig and waits for kcrid to exit.
func (p *kcridProc) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	return p.cmd.Wait()
}

func (p *kcridProc) connect() (internalapi.RuntimeService, internalapi.ImageManagerService) {
	p.t.Helper()
	ctx := context.Background()
	rs, err := remote.NewRemoteRuntimeService(ctx, "unix://"+p.socket, 10*time.Second, nil, false)
	if err != nil {
		p.t.Fatal(err)
	}
	is, err := remote.NewRemoteImageService(ctx, "unix://"+p.socket, 30*time.Second, nil, false)
	if err != nil {
		p.t.Fatal(err)
	}
	return rs, is
}

// TestKillNineAndSIGTERM runs the real kcrid binary: a pod keeps running
// and logging through kill -9 of kcrid and a restart, and SIGTERM stops
// kcrid without stopping containers.
func TestKillNineAndSIGTERM(t *testing.T) {
	p := newKcridProc(t)
	ctx := context.Background()
	dir, socket, daemon := p.dir, p.socket, p.daemon
	if st, err := os.Stat(socket); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", st.Mode(), err)
	}
	rs, is := p.connect()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "e2e", Namespace: "default", Uid: "e2e-uid"},
		LogDirectory: filepath.Join(dir, "logs"),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
	pod, err := rs.RunPodSandbox(ctx, podCfg, "")
	if err != nil {
		t.Fatal(err)
	}
	ctrCfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "counter"},
		Image:    &runtimeapi.ImageSpec{Image: "docker.io/library/busybox:1.36"},
		Command:  []string{"sh", "-c", "i=0; while true; do echo n-$i; i=$((i+1)); sleep 0.02; done"},
		LogPath:  "counter/0.log",
	}
	if _, err := is.PullImage(ctx, ctrCfg.Image, nil, podCfg); err != nil {
		t.Fatal(err)
	}
	ctr, err := rs.CreateContainer(ctx, pod, ctrCfg, podCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.StartContainer(ctx, ctr); err != nil {
		t.Fatal(err)
	}

	// kill -9: nothing is written at shutdown, nothing is lost.
	_ = p.signal(syscall.SIGKILL)
	time.Sleep(time.Second)
	p.start() // the stale socket is replaced
	rs, _ = p.connect()
	st, err := rs.ContainerStatus(ctx, ctr, false)
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after kill -9: %v %v", st, err)
	}
	pods, err := rs.ListPodSandbox(ctx, nil)
	if err != nil || len(pods) != 1 || pods[0].Id != pod || pods[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pods after kill -9: %v %v", pods, err)
	}

	// SIGTERM: kcrid exits cleanly, the container keeps running.
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Errorf("kcrid after SIGTERM: %v", err)
	}
	cl, err := daemon.Client(ctx, "kcrid-e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	nctx := namespaces.WithNamespace(ctx, "kcrid-e2e")
	c, err := cl.LoadContainer(nctx, ctr)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(nctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := task.Status(nctx); err != nil || s.Status != client.Running {
		t.Errorf("container after SIGTERM of kcrid: %v %v", s, err)
	}

	p.start()
	rs, _ = p.connect()
	if err := rs.StopContainer(ctx, ctr, 0); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := logs.ReadLogs(ctx, filepath.Join(podCfg.LogDirectory, ctrCfg.LogPath), ctr, &logs.LogOptions{}, rs, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, l := range lines {
		if l != fmt.Sprintf("n-%d", i) {
			t.Fatalf("log line %d is %q: lines were lost", i, l)
		}
	}
	t.Logf("%d log lines across kill -9, SIGTERM and two restarts, none lost", len(lines))
	if err := rs.RemovePodSandbox(ctx, pod); err != nil {
		t.Fatal(err)
	}
	_ = p.signal(syscall.SIGTERM)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
