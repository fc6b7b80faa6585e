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

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// TestBinary runs the built kubelet-lite against containerd's CRI (the
// kubelet package's tests cover the behaviour on kcrid and containerd): a
// host-network pod from a manifest comes up, `status` shows it, SIGTERM
// stops the agent and leaves the pod running, a new agent adopts it, and a
// removed manifest removes it. Host network keeps this package off the CNI
// bridge the kubelet package's tests use.
func TestBinary(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubelet-lite")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx := context.Background()
	reg := testenv.StartRegistry(testenv.RegistryOptions{})
	t.Cleanup(reg.Close)
	b := testimages.NewBuilder("")
	pause, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	pauseRef, busyboxRef := reg.Host()+"/kubelet-lite/pause:3.10", reg.Host()+"/kubelet-lite/busybox:1"
	if err := testimages.Push(ctx, pause, pauseRef); err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(ctx, busybox, busyboxRef); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(dir, "certs.d")
	if err := testenv.WritePlainHTTPHost(hosts, reg.Host()); err != nil {
		t.Fatal(err)
	}
	ctrd := testenv.NewContainerd(t, testenv.ContainerdOptions{EnableCRI: true, SandboxImage: pauseRef, HostsDir: hosts})
	endpoint := "unix://" + ctrd.Address()
	rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 30*time.Second, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "containerd's CRI to answer", func() (bool, string) {
		_, err := rs.Version(ctx, "v1")
		return err == nil, fmt.Sprint(err)
	})

	manifests := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(manifests, "sleeper.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sh, -c, 'echo up; exec sleep 600']
`, busyboxRef)), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	args := []string{"--manifests", manifests, "--runtime-endpoint", endpoint,
		"--root-dir", filepath.Join(dir, "root"), "--pod-logs-dir", filepath.Join(dir, "logs"), "--node-name", "binary-test",
		"--http-addr", httpAddr, "--file-check-frequency", "200ms", "--relist-period", "200ms", "--backoff-initial", "200ms"}
	status := func() string {
		out, err := exec.Command(bin, "status", "--http-addr", httpAddr).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("error: %v %s", err, out)
		}
		return string(out)
	}
	running := func() (bool, string) {
		s := status()
		return strings.Contains(s, "sleeper") && strings.Contains(s, "main=Running"), s
	}

	agent := startBinary(t, bin, args)
	waitUntil(t, "the pod running in `kubelet-lite status`", running)
	sandboxes := func() []*runtimeapi.PodSandbox {
		list, err := rs.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"io.kubernetes.pod.name": "sleeper"}})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	before := sandboxes()

	// SIGTERM: the agent exits 0, the pod stays.
	agent.stop(t)
	if after := sandboxes(); len(after) != 1 || after[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("after SIGTERM the pod is %v, want it still running", after)
	}

	agent = startBinary(t, bin, args)
	waitUntil(t, "the pod adopted", running)
	if after := sandboxes(); len(after) != 1 || after[0].Id != before[0].Id {
		t.Errorf("sandbox changed across an agent restart: %v -> %v", before, after)
	}
	if out, err := exec.Command(bin, "status", "--http-addr", httpAddr, "-o", "json").Output(); err != nil || !bytes.Contains(out, []byte(`"kind": "PodList"`)) {
		t.Errorf("status -o json: %v\n%s", err, out)
	}

	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the pod removed", func() (bool, string) {
		s := sandboxes()
		return len(s) == 0, fmt.Sprint(s)
	})
	agent.stop(t)
}

type binary struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startBinary(t *testing.T, bin string, args []string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("kubelet-lite stderr:\n%s", b.stderr.String())
		}
	})
	return b
}

// stop sends SIGTERM and waits for a clean exit.
func (b *binary) stop(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("kubelet-lite after SIGTERM: %v\n%s", err, b.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("kubelet-lite did not exit after SIGTERM\n%s", b.stderr.String())
	}
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last:\n%s", what, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
