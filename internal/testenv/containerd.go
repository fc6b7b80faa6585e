package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
)

// ContainerdOptions selects and configures a private containerd daemon.
type ContainerdOptions struct {
	// Version is "1.6" (Debian's /usr/bin/containerd) or "2.4" (built by
	// `make deps` into <module>/.tools/bin, or $KCTR_CONTAINERD24_BIN_DIR).
	// Empty means $KCTR_TEST_CONTAINERD, and "1.6" when that is unset.
	Version string
	// BinDir overrides the directory holding containerd and
	// containerd-shim-runc-v2 for the chosen version.
	BinDir string

	// EnableCRI keeps containerd's built-in CRI plugin (off by default, so
	// the daemon starts fast and our own CRI server can share it). The
	// fields below are only used when it is on.
	EnableCRI bool
	// CNIBinDir defaults to /usr/lib/cni; CNIConfDir to <Dir>/cni/net.d
	// (created empty, never the host's /etc/cni/net.d).
	CNIBinDir, CNIConfDir string
	// SandboxImage is the pause image; empty keeps containerd's default,
	// which cannot be pulled without internet access.
	SandboxImage string
	// HostsDir is a registry hosts directory (certs.d layout). On 2.4 it is
	// also given to the transfer service, which 2.x `ctr pull` uses.
	HostsDir string

	// LogLevel is containerd's log level ("info" if empty). The log is
	// <Dir>/containerd.log.
	LogLevel string
}

// Containerd is a private containerd daemon: its own root, state, sockets
// and config, all under one temp dir, so several may run side by side and
// none ever touches /var/lib/containerd or /run/containerd/containerd.sock.
type Containerd struct {
	version  string
	opts     ContainerdOptions
	dir      string
	address  string
	binDir   string
	runc     string
	proc     *process
	reported string // version string the daemon reported

	stopOnce sync.Once
	stopErr  error
}

const (
	containerdStartTimeout = 30 * time.Second
	containerdStopGrace    = 15 * time.Second
	// Both daemons find their shim through PATH. The bin dir goes first so
	// 1.6 runs Debian's shim and 2.4 runs the v2.4.2 shim, never each other's.
	basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// 2.x refuses a shim socket_dir longer than this (socket path limit
	// minus "/" and a 64-byte hash).
	maxShimSocketDir = 42
)

// ContainerdVersion resolves the version StartContainerd would use.
func ContainerdVersion(v string) (string, error) {
	if v == "" {
		v = os.Getenv("KCTR_TEST_CONTAINERD")
	}
	if v == "" {
		v = "1.6"
	}
	switch v {
	case "1.6", "2.4":
		return v, nil
	}
	return "", fmt.Errorf("unsupported containerd version %q (want 1.6 or 2.4)", v)
}

// ContainerdBinDir returns the directory with containerd and its runc shim
// for version, or an error wrapping ErrNotInstalled.
func ContainerdBinDir(version, override string) (string, error) {
	dir := override
	if dir == "" {
		switch version {
		case "1.6":
			dir = "/usr/bin"
		case "2.4":
			dir = os.Getenv("KCTR_CONTAINERD24_BIN_DIR")
			if dir == "" {
				root, err := ModuleRoot()
				if err != nil {
					return "", fmt.Errorf("containerd 2.4: %w (%v)", ErrNotInstalled, err)
				}
				dir = filepath.Join(root, ".tools", "bin")
			}
		default:
			return "", fmt.Errorf("unsupported containerd version %q", version)
		}
	}
	for _, name := range []string{"containerd", "containerd-shim-runc-v2"} {
		if !isExecutable(filepath.Join(dir, name)) {
			hint := ""
			if version == "2.4" {
				hint = " (run `make deps` or set KCTR_CONTAINERD24_BIN_DIR)"
			}
			return "", fmt.Errorf("containerd %s: %s/%s: %w%s", version, dir, name, ErrNotInstalled, hint)
		}
	}
	return dir, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// lookPathIn finds name in a PATH-style list, as the shim will.
func lookPathIn(pathList, name string) string {
	for _, d := range filepath.SplitList(pathList) {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	return ""
}

// StartContainerd starts a private daemon and returns once it answers a
// Version call (at most 30s, or until ctx ends). On failure the error
// carries the tail of the daemon's log and nothing is left behind.
func StartContainerd(ctx context.Context, opts ContainerdOptions) (*Containerd, error) {
	version, err := ContainerdVersion(opts.Version)
	if err != nil {
		return nil, err
	}
	binDir, err := ContainerdBinDir(version, opts.BinDir)
	if err != nil {
		return nil, err
	}
	pathEnv := binDir + ":" + basePath
	runc := lookPathIn(pathEnv, "runc")
	if runc == "" {
		return nil, fmt.Errorf("runc: %w (not in %s)", ErrNotInstalled, pathEnv)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("containerd needs root")
	}
	// 80 leaves room for "/containerd.sock.ttrpc" within the 108-byte limit.
	dir, err := shortTempDir("kctr-ctrd-", 80)
	if err != nil {
		return nil, err
	}
	c := &Containerd{
		version: version,
		opts:    opts,
		dir:     dir,
		address: filepath.Join(dir, "containerd.sock"),
		binDir:  binDir,
		runc:    runc,
	}
	if err := c.start(ctx, pathEnv); err != nil {
		tail := ""
		if c.proc != nil {
			_ = c.proc.stop(containerdStopGrace)
			tail = "\n--- containerd log (tail) ---\n" + c.proc.logTail(40)
		}
		_ = unmountAllUnder(dir)
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("containerd %s: %w%s", version, err, tail)
	}
	return c, nil
}

func (c *Containerd) start(ctx context.Context, pathEnv string) error {
	// Searchable by all, as containerd makes /run/containerd: the root of a
	// container in a user namespace (a non-root host uid) must reach its
	// bundle's rootfs under state/ for runc to mount it.
	if err := os.Chmod(c.dir, 0o711); err != nil {
		return err
	}
	for _, sub := range []string{"root", "state", "tmp", "opt", "runc"} {
		if err := os.MkdirAll(filepath.Join(c.dir, sub), 0o711); err != nil {
			return err
		}
	}
	if c.opts.EnableCRI && c.opts.CNIConfDir == "" {
		if err := os.MkdirAll(filepath.Join(c.dir, "cni", "net.d"), 0o755); err != nil {
			return err
		}
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	env := append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=")
	}), "PATH="+pathEnv)
	c.proc, err = startProcess("containerd", filepath.Join(c.binDir, "containerd"),
		[]string{"--config", cfgPath}, env, filepath.Join(c.dir, "containerd.log"))
	if err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// waitReady polls until the daemon answers Version. Dialling the socket
// first keeps us out of gRPC's reconnect backoff while it is not there yet.
func (c *Containerd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, containerdStartTimeout)
	defer cancel()
	var lastErr error
	for {
		if c.proc.exited() {
			return fmt.Errorf("daemon exited during startup (%s)", c.proc.exitStatus())
		}
		if conn, err := net.DialTimeout("unix", c.address, time.Second); err == nil {
			conn.Close()
			v, err := c.probeVersion(ctx)
			if err == nil {
				return c.checkReported(v)
			}
			lastErr = err
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering Version after %s: %w (last error: %v)", containerdStartTimeout, ctx.Err(), lastErr)
		case <-c.proc.done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (c *Containerd) probeVersion(ctx context.Context) (string, error) {
	cl, err := client.New(c.address)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := cl.Version(vctx)
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// checkReported catches a wrong binary (e.g. a 1.x build in the 2.4 bin
// dir): the config format differs between major versions.
func (c *Containerd) checkReported(v string) error {
	c.reported = v
	major := strings.SplitN(c.version, ".", 2)[0] + "."
	if !strings.HasPrefix(strings.TrimPrefix(v, "v"), major) {
		return fmt.Errorf("%s/containerd reports version %q, want %s.x", c.binDir, v, c.version)
	}
	return nil
}

// Address is the daemon's gRPC socket path.
func (c *Containerd) Address() string { return c.address }

// Version is "1.6" or "2.4".
func (c *Containerd) Version() string { return c.version }

// DaemonVersion is the version string the daemon itself reported.
func (c *Containerd) DaemonVersion() string { return c.reported }

// Dir is the temp dir holding everything of this daemon.
func (c *Containerd) Dir() string { return c.dir }

// BinDir holds the containerd binaries in use (ctr may be there too).
func (c *Containerd) BinDir() string { return c.binDir }

// LogPath is the daemon's log file.
func (c *Containerd) LogPath() string { return c.proc.logPath }

// LogTail returns about the last n lines of the daemon log, for failures.
func (c *Containerd) LogTail(n int) string { return c.proc.logTail(n) }

// NRISocket is the socket of containerd's own NRI, which NRI plugins (and
// critest's NRI specs) connect to: only 2.4 with EnableCRI has one (1.6
// predates NRI's plugin API; without the CRI nothing would use it). Empty
// when there is none.
func (c *Containerd) NRISocket() string {
	if c.version != "2.4" || !c.opts.EnableCRI {
		return ""
	}
	return c.nriSocket()
}

func (c *Containerd) nriSocket() string { return filepath.Join(c.dir, "nri.sock") }

// PID is the daemon's process id.
func (c *Containerd) PID() int { return c.proc.pid() }

// RuncRoot is a runc state directory private to this daemon. Without it
// tasks of every containerd on the host share /run/containerd/runc/<ns>.
func (c *Containerd) RuncRoot() string { return filepath.Join(c.dir, "runc") }

// RuncOptions are runc shim options using RuncRoot; pass them to
// client.WithRuntime("io.containerd.runc.v2", c.RuncOptions()) for tasks
// created through the client (the CRI plugin is configured with them).
func (c *Containerd) RuncOptions() *options.Options {
	return &options.Options{BinaryName: c.runc, Root: c.RuncRoot()}
}

// Client connects to the daemon with namespace as default namespace (none
// if empty) and checks that it answers, so a dead daemon is reported here
// rather than at first use. The caller closes the client.
func (c *Containerd) Client(ctx context.Context, namespace string) (*client.Client, error) {
	var copts []client.Opt
	if namespace != "" {
		copts = append(copts, client.WithDefaultNamespace(namespace))
	}
	cl, err := client.New(c.address, copts...)
	if err != nil {
		return nil, err
	}
	if _, err := cl.Version(ctx); err != nil {
		cl.Close()
		if c.proc.exited() {
			return nil, fmt.Errorf("containerd %s exited (%s): %w\n%s", c.version, c.proc.exitStatus(), err, c.proc.logTail(20))
		}
		return nil, err
	}
	return cl, nil
}

// Stop deletes everything the daemon holds (CRI pods, tasks, containers,
// images, leases, snapshots) so no shim or mount outlives it, then stops
// the daemon (SIGTERM, SIGKILL after 15s), detaches whatever is still
// mounted under Dir and removes Dir. It only signals the daemon's own PID.
// Safe to call more than once.
func (c *Containerd) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Containerd) stop() error {
	var errs []error
	if c.proc.exited() {
		errs = append(errs, fmt.Errorf("containerd %s had exited before Stop (%s); log tail:\n%s",
			c.version, c.proc.exitStatus(), c.proc.logTail(20)))
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, c.cleanup(ctx)...)
		cancel()
	}
	if err := c.proc.stop(containerdStopGrace); err != nil {
		errs = append(errs, err)
	}
	if err := unmountAllUnder(c.dir); err != nil {
		errs = append(errs, err)
	}
	// We never signal these (they are not ours to kill), but a shim left
	// running means cleanup failed and the caller should hear about it.
	if left := ProcessesReferencing(c.dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes still using %s: %s", c.dir, strings.Join(left, "; ")))
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping containerd %s: %w", c.version, err)
	}
	return nil
}

// NewContainerd starts a daemon for a test and stops it in t.Cleanup.
// Missing root or binaries skip the test (fail it when CI=true).
func NewContainerd(t testing.TB, opts ContainerdOptions) *Containerd {
	t.Helper()
	RequireRoot(t)
	c, err := StartContainerd(context.Background(), opts)
	if errors.Is(err, ErrNotInstalled) {
		Require(t, false, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}
