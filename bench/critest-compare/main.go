// Command critest-compare runs critest v1.37 against containerd's own CRI
// plugin and against kcrid, on the same containerd version, in one run, and
// prints passed/failed/skipped of each and the specs that pass on one and
// not the other.
//
// For each containerd version (--containerd; both, 1.6 then 2.4, by
// default) it starts:
//   - a private containerd with its CRI plugin on (pods on a CNI bridge
//     kbenchC0, 10.248.0.0/16, no masquerade) and runs critest against it;
//     on 2.4 containerd's NRI is on and critest gets its socket, on 1.6
//     there is none (1.6 predates NRI's plugin API) and critest skips its
//     NRI specs;
//   - a fresh containerd of the same version with its CRI off, the built
//     kcrid (--bin) on it with NRI on (pods on kbenchC1, 10.249.0.0/16),
//     and runs critest against kcrid.
//
// Both get the same offline-built images (internal/critestenv), served
// under their original names from one in-process registry, and the same
// skip list (--skip). critest runs serially: --parallel makes it abort.
// Everything it starts (daemons, bridges, network namespaces, temp dirs,
// the SysV segments critest leaks) is removed at the end, also after
// Ctrl-C. critest's output stays in <tmp>/critest-compare-*.log.
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
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/internal/critestenv"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

const (
	bridgeContainerd = "kbenchC0"
	subnetContainerd = "10.248.0.0/16"
	bridgeKcrid      = "kbenchC1"
	subnetKcrid      = "10.249.0.0/16"
	kcridNamespace   = "critest-compare"
	// cleanupTimeout bounds each clean-up step, which runs on a fresh
	// context since the run's own may have been cancelled by Ctrl-C.
	cleanupTimeout = 2 * time.Minute
	// critestInterruptGrace is how long critest gets after SIGINT to stop
	// the running spec and remove what it made before it is killed.
	critestInterruptGrace = 2 * time.Minute
)

// options are the command line.
type options struct {
	binDir   string
	versions []string
	critest  string
	skip     string
	focus    string
}

func main() {
	var opts options
	flag.StringVar(&opts.binDir, "bin", "bin", "directory with the built kcrid and kctr-logwriter")
	version := flag.String("containerd", "", "containerd version: 1.6 or 2.4 (default: both, one after the other)")
	flag.StringVar(&opts.critest, "critest", ".tools/bin/critest", "critest binary (`make deps` builds it)")
	flag.StringVar(&opts.skip, "skip", critestenv.Skip, "critest's -ginkgo.skip, for both runtimes")
	flag.StringVar(&opts.focus, "focus", "", "critest's -ginkgo.focus, for both runtimes (default: every spec)")
	flag.Parse()
	switch *version {
	case "":
		opts.versions = []string{"1.6", "2.4"}
	case "1.6", "2.4":
		opts.versions = []string{*version}
	default:
		fmt.Fprintln(os.Stderr, "bench/critest-compare: --containerd is 1.6 or 2.4 (or empty for both)")
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "bench/critest-compare: %v\n", err)
		os.Exit(1)
	}
}

// result is one critest run.
type result struct {
	runtime       string // "containerd" (its CRI plugin) or "kcrid"
	version       string // "1.6" or "2.4"
	daemonVersion string // as the daemon reported it, e.g. "v2.4.2"
	summary       critestenv.Summary
	outcomes      critestenv.Outcomes
	duration      time.Duration
	logPath       string
}

func run(opts options) (err error) {
	kcridBin, err := executable(filepath.Join(opts.binDir, "kcrid"))
	if err != nil {
		return fmt.Errorf("%w (build it with `CGO_ENABLED=0 go build -o bin/ ./cmd/...`, or pass --bin)", err)
	}
	// kcrid starts a log writer beside itself for every container.
	if _, err := executable(filepath.Join(opts.binDir, "kctr-logwriter")); err != nil {
		return fmt.Errorf("%w (kcrid needs it beside itself)", err)
	}
	critest, err := executable(opts.critest)
	if err != nil {
		return fmt.Errorf("%w (run `make deps`, or pass --critest)", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (containerd, CNI bridges)")
	}
	// Ctrl-C or SIGTERM interrupts critest and still runs every clean-up
	// below; signals keep being caught until run returns, so a second
	// Ctrl-C cannot cut the clean-up short.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "kccmp-")
	if err != nil {
		return err
	}
	defer func() {
		// Whatever a failed step left mounted (a netns) would keep the
		// dir from going.
		if e := testenv.UnmountAll(work); e != nil && err == nil {
			err = e
		}
		if e := os.RemoveAll(work); e != nil && err == nil {
			err = e
		}
	}()
	defer critestenv.SnapshotSharedMemory().RemoveNew()

	fmt.Println("building critest's images offline ...")
	builder := testimages.NewBuilder("")
	images, err := critestenv.Images(builder)
	if err != nil {
		return err
	}
	pause, err := builder.Pause()
	if err != nil {
		return fmt.Errorf("sandbox image: %w", err)
	}
	images[critestenv.SandboxImagePath] = pause
	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()
	hostsDir := filepath.Join(work, "hosts")
	if err := critestenv.Serve(ctx, registry.Host(), hostsDir, images); err != nil {
		return err
	}

	b := bench{work: work, hostsDir: hostsDir, kcrid: kcridBin, critest: critest, skip: opts.skip, focus: opts.focus}
	var results []result
	defer func() { printResults(results) }()
	for _, version := range opts.versions {
		for _, runOne := range []func(context.Context, string) (result, error){b.runContainerd, b.runKcrid} {
			res, err := runOne(ctx, version)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
	}
	return nil
}

// bench holds what both runtimes share.
type bench struct {
	work, hostsDir string
	kcrid, critest string
	skip, focus    string
}

// runContainerd runs critest against containerd's CRI plugin.
func (b bench) runContainerd(ctx context.Context, version string) (res result, err error) {
	dir := filepath.Join(b.work, "containerd-"+version)
	confDir, cleanupNetwork, err := b.network(dir, "kbenchc", bridgeContainerd, subnetContainerd)
	if err != nil {
		return res, err
	}
	defer func() {
		if e := cleanupNetwork(); e != nil && err == nil {
			err = e
		}
	}()
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{
		Version: version, EnableCRI: true, SandboxImage: critestenv.SandboxImage,
		CNIConfDir: confDir, HostsDir: b.hostsDir,
	})
	if err != nil {
		return res, err
	}
	// Stop removes the CRI's pods through the CRI first (CNI DEL, netns).
	defer func() {
		if e := daemon.Stop(); e != nil && err == nil {
			err = e
		}
	}()
	endpoint := "unix://" + daemon.Address()
	if err := waitForCRI(ctx, endpoint); err != nil {
		return res, fmt.Errorf("containerd %s CRI: %w\n%s", version, err, daemon.LogTail(20))
	}
	nriSocket := daemon.NRISocket()
	if nriSocket == "" {
		fmt.Printf("containerd %s: its CRI plugin has no NRI (1.6 predates NRI's plugin API): critest skips the NRI specs there\n", daemon.DaemonVersion())
	}
	res, err = b.critestRun(ctx, "containerd", daemon, endpoint, nriSocket, dir)
	if err != nil && ctx.Err() == nil { // an interrupt needs no log
		err = fmt.Errorf("%w\n--- containerd log (tail) ---\n%s", err, daemon.LogTail(20))
	}
	return res, err
}

// runKcrid runs critest against the built kcrid on a containerd of the
// same version with its CRI off.
func (b bench) runKcrid(ctx context.Context, version string) (res result, err error) {
	dir := filepath.Join(b.work, "kcrid-"+version)
	confDir, cleanupNetwork, err := b.network(dir, "kbenchk", bridgeKcrid, subnetKcrid)
	if err != nil {
		return res, err
	}
	defer func() {
		if e := cleanupNetwork(); e != nil && err == nil {
			err = e
		}
	}()
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{Version: version})
	if err != nil {
		return res, err
	}
	defer func() {
		if e := daemon.Stop(); e != nil && err == nil {
			err = e
		}
	}()
	kcrid, err := startKcrid(ctx, b.kcrid, dir, daemon, confDir, b.hostsDir)
	if err != nil {
		return res, err
	}
	endpoint := "unix://" + kcrid.socket
	defer func() {
		// Pods an interrupted critest left go through kcrid (CNI DEL,
		// netns) before kcrid and the daemon stop.
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if e := testenv.RemoveCRIObjects(cctx, endpoint); e != nil && err == nil {
			err = fmt.Errorf("removing kcrid's pods: %w", e)
		}
		if e := kcrid.stop(); e != nil && err == nil {
			err = e
		}
	}()
	res, err = b.critestRun(ctx, "kcrid", daemon, endpoint, kcrid.nriSocket, dir)
	if err != nil && ctx.Err() == nil { // an interrupt needs no log
		err = fmt.Errorf("%w\n--- kcrid log (tail) ---\n%s", err, kcrid.logTail())
	}
	return res, err
}

// network writes a conflist for bridge into dir/net.d and returns that
// dir and a clean-up removing the bridge and the empty nat chains the
// bridge plugin leaves.
func (b bench) network(dir, name, bridge, subnet string) (string, func() error, error) {
	confDir := filepath.Join(dir, "net.d")
	conflist := critestenv.Conflist(name, bridge, subnet, filepath.Join(dir, "ipam"))
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-"+name+".conflist"), []byte(conflist), 0o644); err != nil {
		return "", nil, err
	}
	cleanup := func() error {
		return errors.Join(testenv.RemoveBridge(bridge, ""), testenv.PruneEmptyCNIChains())
	}
	return confDir, cleanup, nil
}

// critestRun runs critest against endpoint and reads its results.
// critest failing specs is a result; critest not getting to its summary
// (or the run being interrupted) is an error.
func (b bench) critestRun(ctx context.Context, runtimeName string, daemon *testenv.Containerd, endpoint, nriSocket, dir string) (result, error) {
	res := result{runtime: runtimeName, version: daemon.Version(), daemonVersion: daemon.DaemonVersion(),
		logPath: filepath.Join(os.TempDir(), fmt.Sprintf("critest-compare-%s-%s.log", runtimeName, daemon.Version()))}
	report := filepath.Join(dir, "critest-report.json")
	cmd := critestenv.Command(b.critest, critestenv.Args{
		Endpoint: endpoint, NRISocket: nriSocket, Skip: b.skip, Focus: b.focus, JSONReport: report,
	})
	cmd.Dir = dir // critest looks for a crictl.yaml there
	logFile, err := os.Create(res.logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C at the terminal reaches only us:
	// critest gets exactly one SIGINT from us (ginkgo's graceful stop; a
	// second one makes it skip its clean-up). It must not outlive us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Printf("critest against %s on containerd %s (output in %s) ...\n", runtimeName, res.daemonVersion, res.logPath)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting critest: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-waited:
	case <-ctx.Done():
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-waited:
		case <-time.After(critestInterruptGrace):
			_ = cmd.Process.Kill()
			<-waited
		}
		return res, fmt.Errorf("critest against %s interrupted: %w", runtimeName, ctx.Err())
	}
	res.duration = time.Since(start)
	out, err := os.ReadFile(res.logPath)
	if err != nil {
		return res, err
	}
	res.summary, err = critestenv.ParseSummary(out)
	if err != nil {
		return res, fmt.Errorf("critest against %s on containerd %s (%v): %w; see %s", runtimeName, res.daemonVersion, runErr, err, res.logPath)
	}
	if res.outcomes, err = critestenv.ReadReport(report); err != nil {
		return res, err
	}
	fmt.Printf("  %s: %s in %.0fs\n", res.summary.RanText, res.summary.CountsText, res.duration.Seconds())
	for _, line := range res.summary.Failures {
		fmt.Printf("  %s\n", line)
	}
	return res, nil
}

// waitForCRI waits until the CRI at endpoint answers Version: containerd's
// CRI plugin finishes initialising after the daemon's socket is up.
func waitForCRI(ctx context.Context, endpoint string) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering Version: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printResults prints the table and, per containerd version with both
// runtimes, the specs that pass on one runtime only.
func printResults(results []result) {
	if len(results) == 0 {
		return
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "runtime\tcontainerd\tran\tpassed\tfailed\tskipped\tduration")
	for _, r := range results {
		s := r.summary
		fmt.Fprintf(w, "%s\t%s\t%d of %d\t%d\t%d\t%d\t%.0fs\n", r.runtime, r.daemonVersion, s.Ran, s.Total, s.Passed, s.Failed, s.Skipped, r.duration.Seconds())
	}
	w.Flush()
	for i := 0; i+1 < len(results); i++ {
		containerd, kcrid := results[i], results[i+1]
		if containerd.runtime != "containerd" || kcrid.runtime != "kcrid" || containerd.version != kcrid.version {
			continue
		}
		diffs := critestenv.PassDifferences(containerd.outcomes, kcrid.outcomes)
		fmt.Printf("\ncontainerd %s: %d specs pass on one runtime and not the other\n", containerd.daemonVersion, len(diffs))
		for _, d := range diffs {
			fmt.Printf("  containerd %-8s kcrid %-8s %s\n", orNone(d.Left), orNone(d.Right), d.Spec)
		}
	}
}

func orNone(outcome string) string {
	if outcome == "" {
		return "(absent)"
	}
	return outcome
}

// kcridProc is the built kcrid binary on a containerd of the bench.
type kcridProc struct {
	cmd       *exec.Cmd
	socket    string
	nriSocket string
	logPath   string
	exited    chan struct{} // closed when cmd.Wait returned
}

// startKcrid runs kcrid with NRI on a socket of its own and waits for its
// CRI socket.
func startKcrid(ctx context.Context, bin, dir string, daemon *testenv.Containerd, confDir, hostsDir string) (*kcridProc, error) {
	p := &kcridProc{socket: filepath.Join(dir, "kcrid.sock"), nriSocket: filepath.Join(dir, "nri.sock"),
		logPath: filepath.Join(dir, "kcrid.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	runc := daemon.RuncOptions()
	p.cmd = exec.Command(bin,
		"--listen", "unix://"+p.socket,
		"--containerd-address", daemon.Address(),
		"--containerd-namespace", kcridNamespace,
		"--root", filepath.Join(dir, "kcrid-root"),
		"--state", filepath.Join(dir, "kcrid-state"),
		"--sandbox-image", critestenv.SandboxImage,
		"--cni-conf-dir", confDir,
		"--hosts-dir", hostsDir,
		"--runc-root", runc.Root,
		"--runc-binary", runc.BinaryName,
		"--nri-enable",
		"--nri-socket", p.nriSocket,
		"--nri-plugin-dir", filepath.Join(dir, "nri-plugins"),
		"--nri-plugin-config-dir", filepath.Join(dir, "nri-conf.d"),
		// As TestCritest's kcrid: above the 2s for which critest's
		// Synchronize specs hold a plugin's Synchronize open.
		"--nri-plugin-request-timeout", "10s",
		"--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// Own process group: Ctrl-C must not stop kcrid before its pods are
	// removed through it. It must not outlive us either.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting kcrid: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.After(20 * time.Second)
	for {
		if conn, err := net.Dial("unix", p.socket); err == nil {
			conn.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("kcrid exited (%s):\n%s", p.cmd.ProcessState, p.logTail())
		case <-deadline:
			_ = p.stop()
			return nil, fmt.Errorf("kcrid did not come up in 20s:\n%s", p.logTail())
		case <-ctx.Done():
			_ = p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *kcridProc) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM kcrid: %w", err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("kcrid ignored SIGTERM for 15 s; killed")
	}
}

func (p *kcridProc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// executable is path made absolute, if it is an executable file.
func executable(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: no executable here", abs)
	}
	return abs, nil
}
