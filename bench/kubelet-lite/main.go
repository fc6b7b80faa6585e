// Command kubelet-lite measures the built kubelet-lite on containerd's CRI
// plugin (the runtime the kubelet v1.37 was measured on, see issue 7):
//
//   - the time from starting kubelet-lite with --pods static pod manifests
//     (busybox sleeping, on a CNI bridge kbenchL0 10.246.0.0/16, no
//     masquerade) until /pods shows every container Running;
//   - the agent's CPU seconds (utime+stime) over --idle of idling with
//     those pods, and its RSS (VmRSS) at the end.
//
// It prints the kubelet's numbers measured here beside ours, and the goals.
// Run with --runtime kcrid to measure on kcrid instead (the built kcrid
// binary on the same kind of containerd).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

const (
	bridge = "kbenchL0"
	subnet = "10.246.0.0/16"
	// The kubelet v1.37 on containerd 1.6.20's CRI, 30 static pods (issue 7).
	kubeletStart   = 6.3 // seconds to Running
	kubeletIdleCPU = 1.7 // CPU seconds per idle minute
	kubeletRSS     = 83  // MiB
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kubelet-lite (and kcrid for --runtime kcrid)")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	pods := flag.Int("pods", 30, "static pods")
	idle := flag.Duration("idle", time.Minute, "idle period for the CPU reading")
	runtimeName := flag.String("runtime", "containerd", "CRI runtime: containerd (its CRI plugin) or kcrid")
	flag.Parse()
	if *pods < 1 || *idle <= 0 || (*runtimeName != "containerd" && *runtimeName != "kcrid") {
		fmt.Fprintln(os.Stderr, "bench/kubelet-lite: --pods ≥ 1, --idle > 0, --runtime containerd|kcrid")
		os.Exit(2)
	}
	if err := run(*binDir, *version, *runtimeName, *pods, *idle); err != nil {
		fmt.Fprintf(os.Stderr, "bench/kubelet-lite: %v\n", err)
		os.Exit(1)
	}
}

func run(binDir, version, runtimeName string, pods int, idle time.Duration) (err error) {
	agentBin, err := executable(binDir, "kubelet-lite")
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (containerd, CNI bridge)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()
	images, err := testimages.NewBuilder("").PushPodImages(ctx, registry.Host(), "kubelet-lite-bench")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kklb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	hostsDir := filepath.Join(work, "hosts")
	if err := testenv.WritePlainHTTPHost(hostsDir, registry.Host()); err != nil {
		return err
	}
	confDir := filepath.Join(work, "net.d")
	if err := writeFile(filepath.Join(confDir, "10-kbenchl.conflist"), bridgeConfig(filepath.Join(work, "ipam"))); err != nil {
		return err
	}
	defer func() {
		if e := testenv.RemoveBridge(bridge, ""); e != nil && err == nil {
			err = e
		}
		if e := testenv.PruneEmptyCNIChains(); e != nil && err == nil {
			err = e
		}
	}()

	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{
		Version: version, EnableCRI: runtimeName == "containerd", CNIConfDir: confDir, SandboxImage: images.Pause, HostsDir: hostsDir,
	})
	if err != nil {
		return err
	}
	defer func() {
		if e := daemon.Stop(); e != nil && err == nil {
			err = e
		}
	}()
	endpoint := "unix://" + daemon.Address()
	if runtimeName == "kcrid" {
		kcridBin, err := executable(binDir, "kcrid")
		if err != nil {
			return err
		}
		k, err := startProcess(kcridBin, filepath.Join(work, "kcrid.log"),
			"--listen", "unix://"+filepath.Join(work, "kcrid.sock"), "--containerd-address", daemon.Address(),
			"--root", filepath.Join(work, "kcrid-root"), "--state", filepath.Join(work, "kcrid-state"),
			"--sandbox-image", images.Pause, "--cni-conf-dir", confDir, "--hosts-dir", hostsDir,
			"--runc-root", daemon.RuncOptions().Root, "--log-level", "warn")
		if err != nil {
			return err
		}
		defer k.stop()
		socket := filepath.Join(work, "kcrid.sock")
		endpoint = "unix://" + socket
		if err := waitFor(ctx, 20*time.Second, func() bool { _, err := os.Stat(socket); return err == nil }); err != nil {
			return fmt.Errorf("kcrid socket: %w\n%s", err, k.logTail())
		}
	}
	rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 30*time.Second, nil, false)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { _, err := rs.Version(ctx, "v1"); return err == nil }); err != nil {
		return fmt.Errorf("%s CRI does not answer: %w", runtimeName, err)
	}
	// Every pod goes through the CRI before the daemon stops, so CNI DEL
	// releases the addresses and the netns mounts.
	defer func() {
		list, e := rs.ListPodSandbox(context.Background(), nil)
		if e != nil && err == nil {
			err = e
		}
		for _, p := range list {
			_ = rs.StopPodSandbox(context.Background(), p.Id)
			if e := rs.RemovePodSandbox(context.Background(), p.Id); e != nil && err == nil {
				err = e
			}
		}
	}()
	is, err := remote.NewRemoteImageService(ctx, endpoint, time.Minute, nil, false)
	if err != nil {
		return err
	}
	// Images are pulled beforehand: the kubelet's 6.3 s had them cached.
	for _, ref := range []string{images.Pause, images.Busybox} {
		if _, err := is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
			return err
		}
	}

	manifests := filepath.Join(work, "manifests")
	for i := range pods {
		if err := writeFile(filepath.Join(manifests, fmt.Sprintf("pod-%02d.yaml", i)), manifest(i, images.Busybox)); err != nil {
			return err
		}
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	fmt.Printf("containerd %s, runtime %s, %d static pods, load average %s\n", daemon.DaemonVersion(), runtimeName, pods, measure.LoadAverage())
	start := time.Now()
	agent, err := startProcess(agentBin, filepath.Join(work, "kubelet-lite.log"),
		"--manifests", manifests, "--runtime-endpoint", endpoint, "--root-dir", filepath.Join(work, "root"),
		"--pod-logs-dir", filepath.Join(work, "logs"), "--node-name", "bench", "--http-addr", httpAddr, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer agent.stop()
	if err := waitFor(ctx, 5*time.Minute, func() bool { return allRunning(httpAddr, pods) }); err != nil {
		return fmt.Errorf("pods not running: %w\n%s", err, agent.logTail())
	}
	toRunning := time.Since(start)
	fmt.Printf("%-36s %6.2f s   (kubelet %.1f s; ratio %.2f, goal ≤ 0.8)\n", "manifests → all containers Running", toRunning.Seconds(),
		kubeletStart, toRunning.Seconds()/kubeletStart)

	cpu0, err := agent.cpuSeconds()
	if err != nil {
		return err
	}
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu1, err := agent.cpuSeconds()
	if err != nil {
		return err
	}
	perMinute := (cpu1 - cpu0) * float64(time.Minute) / float64(idle)
	fmt.Printf("%-36s %6.2f s   (kubelet %.1f s; ratio %.2f, goal ≤ 0.3)\n", "CPU per idle minute", perMinute, kubeletIdleCPU, perMinute/kubeletIdleCPU)
	rss, err := agent.rssMiB()
	if err != nil {
		return err
	}
	fmt.Printf("%-36s %6.1f MiB (kubelet %d MiB; goal ≤ 30 MiB)\n", "RSS", rss, kubeletRSS)
	if !allRunning(httpAddr, pods) {
		return errors.New("pods stopped running during the idle period")
	}
	// Stop the agent before the pods go, or it would recreate them.
	agent.stop()
	fmt.Printf("load average at the end: %s\n", measure.LoadAverage())
	return nil
}

func manifest(i int, image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: static-%02d, namespace: bench}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sleep, "3600"]
`, i, image)
}

// allRunning: /pods lists n pods, each with every container Running.
func allRunning(httpAddr string, n int) bool {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + httpAddr + "/pods")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var list v1.PodList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Items) != n {
		return false
	}
	for _, p := range list.Items {
		if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
			return false
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil {
				return false
			}
		}
	}
	return true
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// process is a started program with its log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startProcess(bin, logPath string, args ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM (SIGKILL after 15 s); stopping twice is fine.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpuSeconds is utime+stime from /proc/<pid>/stat (fields 14 and 15, in
// clock ticks of 1/100 s on Linux).
func (p *process) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; count from after it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat: %q", b)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / 100, nil
}

func (p *process) rssMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return float64(kb) / 1024, nil
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func executable(dir, name string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: no executable here (build it with `go build -o %s/ ./cmd/%s`, or pass --bin)", path, dir, name)
	}
	return path, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func bridgeConfig(ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kbenchl",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, bridge, subnet, ipamDir)
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
