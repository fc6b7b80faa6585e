package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// The demo's pod network: a bridge of its own, removed at the end.
const (
	demoBridge = "kctrdemo0"
	demoSubnet = "10.236.0.0/24"
)

// podDemo runs a pod through kcrid on the same containerd, driven by
// kcrictl as an operator would, looks at it with kctr -n k8s.io, then
// lets kubelet-lite run static pods through the same kcrid.
type podDemo struct {
	binDir       string
	work         string
	daemon       *testenv.Containerd
	registry     *testenv.DockerRegistry
	dockerConfig string
	hostsDir     string
	user, pass   string
	kctrIn       func(namespace string, args ...string) error
}

func (d *podDemo) run(ctx context.Context, done *cleanups) error {
	for _, program := range []string{"kcrid", "kcrictl"} {
		if _, err := os.Stat(filepath.Join(d.binDir, program)); err != nil {
			return fmt.Errorf("%s is not built (run `make build`): %w", program, err)
		}
	}
	step("Pushing a pause image for kcrid's pod sandboxes")
	pause, err := testimages.NewBuilder("").Pause()
	if err != nil {
		return err
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.registry.CertPool()}}
	pauseRef := d.registry.Host() + "/demo/pause:3.10"
	if err := testimages.Push(ctx, pause, pauseRef, remote.WithAuth(&authn.Basic{Username: d.user, Password: d.pass}), remote.WithTransport(transport)); err != nil {
		return err
	}

	step("Starting kcrid, a CRI server, on the same containerd")
	socket, err := d.startKcrid(ctx, done, pauseRef)
	if err != nil {
		return err
	}
	endpoint := "unix://" + socket
	kcrictl := func(args ...string) (string, error) {
		full := append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "60s", "--config", filepath.Join(d.work, "crictl.yaml")}, args...)
		fmt.Printf("\n$ kcrictl %s\n", shellQuote(args))
		cmd := exec.CommandContext(ctx, filepath.Join(d.binDir, "kcrictl"), full...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.dockerConfig)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		fmt.Print(out.String())
		if err != nil {
			return "", fmt.Errorf("kcrictl %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(out.String()), nil
	}
	if err := os.WriteFile(filepath.Join(d.work, "crictl.yaml"), nil, 0o644); err != nil {
		return err
	}
	podJSON := filepath.Join(d.work, "pod.json")
	ctrJSON := filepath.Join(d.work, "container.json")
	image := d.registry.Host() + "/demo/busybox:latest"
	if err := os.WriteFile(podJSON, []byte(fmt.Sprintf(`{
  "metadata": {"name": "hello", "namespace": "default", "uid": "hello-uid", "attempt": 0},
  "hostname": "hello",
  "labels": {"io.kubernetes.pod.name": "hello", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "hello-uid"},
  "log_directory": %q,
  "linux": {}
}`, filepath.Join(d.work, "pod-logs"))), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(ctrJSON, []byte(fmt.Sprintf(`{
  "metadata": {"name": "greeter"},
  "labels": {"io.kubernetes.pod.name": "hello", "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "hello-uid", "io.kubernetes.container.name": "greeter"},
  "image": {"image": %q},
  "command": ["sh", "-c", "echo hello from a pod that kcrid runs; echo my address: $(ip -4 -o addr show eth0 | awk '{print $4}'); exec sleep 3600"],
  "log_path": "greeter/0.log",
  "linux": {}
}`, image)), 0o644); err != nil {
		return err
	}

	step("kcrictl finds kcrid and runs a pod on the CNI bridge")
	if _, err := kcrictl("version"); err != nil {
		return err
	}
	pod, err := kcrictl("runp", podJSON)
	if err != nil {
		return err
	}
	defer func() {
		// The pod goes before kcrid and containerd stop.
		_, _ = kcrictl("stopp", pod)
		_, _ = kcrictl("rmp", pod)
	}()
	if _, err := kcrictl("pull", image); err != nil {
		return err
	}
	container, err := kcrictl("create", pod, ctrJSON, podJSON)
	if err != nil {
		return err
	}
	if _, err := kcrictl("start", container); err != nil {
		return err
	}
	if _, err := kcrictl("pods"); err != nil {
		return err
	}
	if _, err := kcrictl("ps"); err != nil {
		return err
	}
	if err := waitForLog(ctx, kcrictl, container, "my address"); err != nil {
		return err
	}
	if _, err := kcrictl("exec", "--sync", container, "hostname"); err != nil {
		return err
	}
	step("kctr sees what the CRI server runs, named after the pod")
	if err := d.kctrIn("k8s.io", "ps"); err != nil {
		return err
	}
	return d.runStaticPods(ctx, endpoint, kcrictl)
}

func waitForLog(ctx context.Context, kcrictl func(...string) (string, error), container, want string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := kcrictl("logs", container)
		if err == nil && strings.Contains(out, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("container %s never logged %q", container, want)
}

// startKcrid runs kcrid with its state, CNI config and socket in the
// demo's work dir; it is stopped (SIGTERM) and its bridge removed at the end.
func (d *podDemo) startKcrid(ctx context.Context, done *cleanups, sandboxImage string) (string, error) {
	confDir := filepath.Join(d.work, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", err
	}
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kctr-demo",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`, demoBridge, demoSubnet)
	if err := os.WriteFile(filepath.Join(confDir, "10-demo.conflist"), []byte(conflist), 0o644); err != nil {
		return "", err
	}
	socket := filepath.Join(d.work, "kcrid.sock")
	cmd := exec.Command(filepath.Join(d.binDir, "kcrid"),
		"--listen", "unix://"+socket,
		"--containerd-address", d.daemon.Address(),
		"--root", filepath.Join(d.work, "kcrid-root"),
		"--state", filepath.Join(d.work, "kcrid-state"),
		"--sandbox-image", sandboxImage,
		"--cni-conf-dir", confDir,
		"--hosts-dir", d.hostsDir,
		"--runc-root", d.daemon.RuncRoot(),
		"--log-level", "warn",
	)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.dockerConfig)
	logFile, err := os.Create(filepath.Join(d.work, "kcrid.log"))
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start kcrid: %w", err)
	}
	done.add(func() error {
		_ = testenv.PruneEmptyCNIChains()
		return testenv.RemoveBridge(demoBridge, "kctr-demo")
	})
	done.add(func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		return logFile.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(socket); err == nil {
			fmt.Printf("kcrid serving on unix://%s (log: %s)\n", socket, logFile.Name())
			return socket, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", errors.New("kcrid did not create its socket within 20 s (see " + logFile.Name() + ")")
}
