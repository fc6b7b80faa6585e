// Command pod-start compares kcrid with containerd's built-in CRI plugin on
// the same containerd daemon, in the same run: containerd's CRI serves the
// k8s.io namespace, the built kcrid binary serves kcrid-bench on the same
// daemon, each with its own CNI bridge (kbenchA0 10.238.0.0/16 for
// containerd, kbenchB0 10.239.0.0/16 for kcrid; no masquerade).
//
// It measures, interleaved between the two runtimes:
//   - RunPodSandbox + CreateContainer + StartContainer (busybox sleep, with
//     a log path, CNI pod network), the pod stopped and removed outside the
//     timed region; the median of each of the three calls is printed too;
//   - ListContainers (no filter) with --list-containers created containers
//     (host-network pods of 50);
//
// and kcrid's own RSS (VmRSS) with --rss-pods host-network pod sandboxes;
// kcrid's log writers are separate processes and not counted. It prints
// medians and ratios: these machines are noisy, so absolute times mean
// little on their own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

const (
	kcridNamespace = "kcrid-bench"
	bridgeCRI      = "kbenchA0"
	subnetCRI      = "10.238.0.0/16"
	bridgeKcrid    = "kbenchB0"
	subnetKcrid    = "10.239.0.0/16"
	perListPod     = 50
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kcrid")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	runs := flag.Int("runs", 15, "timed runs per runtime")
	listN := flag.Int("list-containers", 500, "created containers per runtime for the ListContainers case (0 skips it)")
	rssPods := flag.Int("rss-pods", 100, "host-network pods on kcrid for the RSS reading (0 skips it)")
	flag.Parse()
	if *runs < 1 || *listN < 0 || *rssPods < 0 {
		fmt.Fprintln(os.Stderr, "bench/pod-start: --runs must be at least 1, --list-containers and --rss-pods at least 0")
		os.Exit(2)
	}
	if err := run(*binDir, *version, *runs, *listN, *rssPods); err != nil {
		fmt.Fprintf(os.Stderr, "bench/pod-start: %v\n", err)
		os.Exit(1)
	}
}

func run(binDir, version string, runs, listN, rssPods int) (err error) {
	kcridBin, err := filepath.Abs(filepath.Join(binDir, "kcrid"))
	if err != nil {
		return err
	}
	if fi, err := os.Stat(kcridBin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: no executable here (build it with `CGO_ENABLED=0 go build -o bin/ ./cmd/kcrid`, or pass --bin)", kcridBin)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (containerd, CNI bridges)")
	}
	// Ctrl-C or SIGTERM stops the bench between calls and still runs the
	// cleanup below.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Images, built offline and served by an in-process registry.
	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()
	images, err := testimages.NewBuilder("").PushPodImages(ctx, registry.Host(), "pod-start-bench")
	if err != nil {
		return err
	}
	busyboxRef, pauseRef := images.Busybox, images.Pause

	work, err := os.MkdirTemp("", "kpsb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	hostsDir := filepath.Join(work, "hosts")
	if err := testenv.WritePlainHTTPHost(hostsDir, registry.Host()); err != nil {
		return err
	}
	confCRI := filepath.Join(work, "net-cri")
	confKcrid := filepath.Join(work, "net-kcrid")
	if err := writeFile(filepath.Join(confCRI, "10-kbench.conflist"), bridgeConfig("kbencha", bridgeCRI, subnetCRI, filepath.Join(work, "ipam-cri"))); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(confKcrid, "10-kbench.conflist"), bridgeConfig("kbenchb", bridgeKcrid, subnetKcrid, filepath.Join(work, "ipam-kcrid"))); err != nil {
		return err
	}
	defer func() {
		for _, br := range []string{bridgeCRI, bridgeKcrid} {
			if e := testenv.RemoveBridge(br, ""); e != nil && err == nil {
				err = e
			}
		}
		if e := testenv.PruneEmptyCNIChains(); e != nil && err == nil {
			err = e
		}
	}()

	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{
		Version: version, EnableCRI: true, CNIConfDir: confCRI, SandboxImage: pauseRef, HostsDir: hostsDir,
	})
	if err != nil {
		return err
	}
	// The kubelet always sets a cgroup parent; ours is removed once every
	// pod is gone (the daemon's Stop tears down what is left of the CRI's).
	cgParent := "/kbench-pod-start-" + filepath.Base(work)
	defer func() {
		if e := daemon.Stop(); e != nil && err == nil {
			err = e
		}
		if e := testenv.RemoveCgroup(cgParent); e != nil && err == nil {
			err = e
		}
	}()

	kcrid, err := startKcrid(ctx, kcridBin, work, daemon, pauseRef, confKcrid, hostsDir)
	if err != nil {
		return err
	}
	defer func() {
		if e := kcrid.stop(); e != nil && err == nil {
			err = e
		}
	}()

	crt, err := connect(ctx, "containerd CRI", "unix://"+daemon.Address(), busyboxRef, cgParent, filepath.Join(work, "logs-cri"))
	if err != nil {
		return err
	}
	krt, err := connect(ctx, "kcrid", "unix://"+kcrid.socket, busyboxRef, cgParent, filepath.Join(work, "logs-kcrid"))
	if err != nil {
		return err
	}
	rts := []*runtime{crt, krt}
	// Whatever a failed step left behind goes before kcrid and the daemon
	// stop; kcrid's pods would otherwise only go with the daemon's Stop.
	defer func() {
		for _, rt := range rts {
			if e := rt.removeAll(context.Background()); e != nil && err == nil {
				err = e
			}
		}
	}()
	for _, rt := range rts {
		for _, ref := range []string{pauseRef, busyboxRef} {
			if err := rt.pull(ctx, ref); err != nil {
				return err
			}
		}
	}

	fmt.Printf("containerd %s (%s), same daemon for both; kcrid %s (namespace %s); %d runs each, interleaved; load average %s\n",
		daemon.DaemonVersion(), version, kcridBin, kcridNamespace, runs, measure.LoadAverage())
	fail := func(err error) error {
		return fmt.Errorf("%w\n--- kcrid log (tail) ---\n%s\n--- containerd log (tail) ---\n%s", err, kcrid.logTail(), daemon.LogTail(20))
	}

	// 1. Pod start.
	m, err := timePodStart(ctx, rts, runs)
	if err != nil {
		return fail(err)
	}
	measure.Ratio("ratio kcrid/containerd pod start (≤ 0.9)", m[1], m[0])

	// 2. ListContainers.
	if listN > 0 {
		t0 := time.Now()
		for _, rt := range rts {
			if err := rt.createMany(ctx, listN); err != nil {
				return fail(err)
			}
		}
		fmt.Printf("ListContainers: %d created (not started) containers per runtime in %d host-network pods (setup %.0fs); kcrid RSS now %s\n",
			listN, (listN+perListPod-1)/perListPod, time.Since(t0).Seconds(), kcrid.rss())
		m, err := timeList(ctx, rts, runs, listN)
		if err != nil {
			return fail(err)
		}
		measure.Ratio("ratio kcrid/containerd list (≤ 1.0)", m[1], m[0])
		for _, rt := range rts {
			if err := rt.removeAll(ctx); err != nil {
				return fail(err)
			}
		}
	}

	// 3. kcrid RSS with pods.
	if rssPods > 0 {
		before := kcrid.rss()
		t0 := time.Now()
		if err := krt.runPods(ctx, rssPods); err != nil {
			return fail(err)
		}
		setup := time.Since(t0)
		// Let the start-up garbage go the way it would in a long-lived daemon.
		time.Sleep(2 * time.Second)
		fmt.Printf("kcrid RSS with %d host-network pod sandboxes (no containers): %s (before: %s; setup %.0fs; log writers are separate processes, not counted) (goal ≤ 50 MiB)\n",
			rssPods, kcrid.rss(), before, setup.Seconds())
		if err := krt.removeAll(ctx); err != nil {
			return fail(err)
		}
	}
	fmt.Printf("load average at the end: %s\n", measure.LoadAverage())
	return nil
}

// bridgeConfig is a bridge + host-local + portmap conflist, no masquerade
// (no nat chains), IPAM state in our temp dir.
func bridgeConfig(name, bridge, subnet, ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, name, bridge, subnet, ipamDir)
}

// kcridProc is the built kcrid binary on the bench's containerd.
type kcridProc struct {
	cmd     *exec.Cmd
	socket  string
	logPath string
}

func startKcrid(ctx context.Context, bin, work string, daemon *testenv.Containerd, pauseRef, confDir, hostsDir string) (*kcridProc, error) {
	p := &kcridProc{socket: filepath.Join(work, "kcrid.sock"), logPath: filepath.Join(work, "kcrid.log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	runc := daemon.RuncOptions()
	cmd := exec.Command(bin,
		"--listen", "unix://"+p.socket,
		"--containerd-address", daemon.Address(),
		"--containerd-namespace", kcridNamespace,
		"--root", filepath.Join(work, "kcrid-root"),
		"--state", filepath.Join(work, "kcrid-state"),
		"--sandbox-image", pauseRef,
		"--cni-conf-dir", confDir,
		"--hosts-dir", hostsDir,
		"--runc-root", runc.Root,
		"--runc-binary", runc.BinaryName,
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		if conn, err := net.Dial("unix", p.socket); err == nil {
			conn.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("kcrid did not come up:\n%s", p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *kcridProc) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kcrid after SIGTERM: %v\n%s", err, p.logTail())
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return errors.New("kcrid ignored SIGTERM for 15 s; killed")
	}
}

// rss is VmRSS of the kcrid process, in MiB.
func (p *kcridProc) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "? (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
			}
		}
	}
	return "?"
}

func (p *kcridProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
