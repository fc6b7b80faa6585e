package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	apitest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/cri-client/pkg/fake"

	"github.com/kctr/kctr/endpoints"
	"github.com/kctr/kctr/internal/testenv"
)

// The fallback tests put servers at the REAL default socket paths, so
// they run in a child process inside a private mount namespace with a
// tmpfs over /run (and /var/run): the host's /run is never touched.
const (
	envNSChild     = "KCRICTL_TEST_NS_CHILD"
	envParentMntNS = "KCRICTL_TEST_PARENT_MNTNS"
)

func TestFallbackDefaultPaths(t *testing.T) {
	if os.Getenv(envNSChild) == "1" {
		fallbackChild(t)
		return
	}
	testenv.RequireRoot(t)
	unshare, err := exec.LookPath("unshare")
	testenv.Require(t, err == nil, "unshare(1) not found")
	mntns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", os.Args[0],
		"-test.run=^TestFallbackDefaultPaths$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envNSChild+"=1", envParentMntNS+"="+mntns, envBin+"="+kcrictlBin)
	out, err := cmd.CombinedOutput()
	t.Logf("child output:\n%s", out)
	if err != nil {
		t.Fatalf("child in private mount namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestFallbackDefaultPaths") {
		t.Fatal("child did not run the test")
	}
}

func fallbackChild(t *testing.T) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil || self == os.Getenv(envParentMntNS) || os.Getenv(envParentMntNS) == "" {
		t.Fatalf("refusing to run: not in a private mount namespace (%s, parent %s, %v)", self, os.Getenv(envParentMntNS), err)
	}
	mounts := []string{"/run"}
	if fi, err := os.Lstat("/var/run"); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		mounts = append(mounts, "/var/run")
	}
	for _, m := range mounts {
		if err := syscall.Mount("tmpfs", m, "tmpfs", 0, "mode=0755,size=16m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", m, err)
		}
	}
	// Paths as the default list names them.
	cur := sockPaths(endpoints.DefaultEndpoints(false))
	legacy := sockPaths(endpoints.DefaultEndpoints(true))
	cfgDir := shortDir(t)
	emptyCfg := writeFile(t, cfgDir, "crictl.yaml", "")
	legacyCfg := writeFile(t, cfgDir, "legacy.yaml", "legacy-default-endpoints: true\n")

	type cand struct {
		Endpoint     string `json:"endpoint"`
		Source       string `json:"source"`
		SocketExists bool   `json:"socket_exists"`
		Answered     bool   `json:"answered"`
		RuntimeName  string `json:"runtime_name"`
		Error        string `json:"error"`
		Chosen       bool   `json:"chosen"`
	}
	type diag struct {
		Chosen     string   `json:"chosen"`
		Reason     string   `json:"reason"`
		Candidates []cand   `json:"candidates"`
		Warnings   []string `json:"warnings"`
	}
	diagnose := func(t *testing.T, env []string, args ...string) (diag, binResult) {
		t.Helper()
		r := runBin(t, env, append(args, "endpoints", "-o", "json")...)
		var d diag
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatalf("endpoints -o json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		return d, r
	}
	check := func(t *testing.T, c cand, ep, src string, exists, answered, chosen bool, errHas string) {
		t.Helper()
		if c.Endpoint != ep || c.Source != src || c.SocketExists != exists || c.Answered != answered || c.Chosen != chosen ||
			(errHas == "" && c.Error != "") || !strings.Contains(c.Error, errHas) {
			t.Errorf("candidate %+v, want %s %s exists=%v answered=%v chosen=%v error~%q", c, ep, src, exists, answered, chosen, errHas)
		}
	}
	deprecated := func(s string) bool { return strings.Contains(s, "default endpoints are deprecated") }

	t.Run("current", func(t *testing.T) {
		nonCRI(t, cur[0])
		fakeAt(t, cur[2])
		d, r := diagnose(t, nil, "-c", emptyCfg)
		if r.code != 0 || len(d.Candidates) != 3 {
			t.Fatalf("exit %d, %+v", r.code, d)
		}
		check(t, d.Candidates[0], "unix://"+cur[0], "default", true, false, false, "unimplemented")
		check(t, d.Candidates[1], "unix://"+cur[1], "default", false, false, false, "socket file does not exist")
		check(t, d.Candidates[2], "unix://"+cur[2], "default", true, true, true, "")
		if d.Chosen != "unix:///var/run/cri-dockerd.sock" || d.Candidates[2].RuntimeName != apitest.FakeRuntimeName || !strings.Contains(d.Reason, "first default endpoint") {
			t.Errorf("diagnosis %+v", d)
		}
		v := runBin(t, nil, "-c", emptyCfg, "version").ok(t, "version")
		if !strings.Contains(v.stdout, "RuntimeName:  "+apitest.FakeRuntimeName) || !deprecated(v.stderr) {
			t.Errorf("version: %+v", v)
		}
		table := runBin(t, nil, "-c", emptyCfg, "endpoints").ok(t, "endpoints")
		if !strings.Contains(table.stdout, "chosen: unix:///var/run/cri-dockerd.sock") || !deprecated(table.stderr) {
			t.Errorf("endpoints table: %+v", table)
		}
		runBin(t, nil, "-c", emptyCfg, "pods").ok(t, "pods")

		// An endpoint set in the environment is the only candidate: no
		// fallback to cri-dockerd and no deprecation warning.
		env := []string{endpoints.EnvRuntimeEndpoint + "=unix://" + cur[0]}
		r = runBin(t, env, "-c", emptyCfg, "version")
		if r.code == 0 || !strings.Contains(r.stderr, "set by $CONTAINER_RUNTIME_ENDPOINT") || deprecated(r.stderr) {
			t.Errorf("env endpoint: %+v", r)
		}
	})

	t.Run("legacy", func(t *testing.T) {
		stale(t, legacy[1])
		fakeAt(t, legacy[2])
		for _, args := range [][]string{{"-c", emptyCfg, "--legacy-default-endpoints"}, {"-c", legacyCfg}} {
			d, r := diagnose(t, nil, args...)
			if r.code != 0 || len(d.Candidates) != 3 {
				t.Fatalf("%v: exit %d, %+v", args, r.code, d)
			}
			check(t, d.Candidates[0], "unix:///var/run/dockershim.sock", "default-legacy", false, false, false, "does not exist")
			check(t, d.Candidates[1], "unix://"+legacy[1], "default-legacy", true, false, false, "connection refused")
			check(t, d.Candidates[2], "unix://"+legacy[2], "default-legacy", true, true, true, "")
			if !strings.Contains(d.Reason, "legacy") {
				t.Errorf("reason %q", d.Reason)
			}
			v := runBin(t, nil, append(args, "version")...).ok(t, "version")
			if !strings.Contains(v.stdout, apitest.FakeRuntimeName) || !deprecated(v.stderr) || !strings.Contains(v.stderr, "dockershim.sock") {
				t.Errorf("legacy version: %+v", v)
			}
		}
		// The current list on the same sockets: containerd (stale) is
		// skipped, CRI-O answers; dockershim is not in it.
		d, _ := diagnose(t, nil, "-c", emptyCfg)
		if d.Chosen != "unix:///run/crio/crio.sock" || d.Candidates[0].Source != "default" {
			t.Errorf("current list: %+v", d)
		}
	})

	// With $KCRICTL_TEST_CRICTL set, compare the time to answer `ps` when
	// only the third default socket is alive (logged, not asserted: the
	// benchmark lives in bench/).
	t.Run("timing", func(t *testing.T) {
		crictl := os.Getenv("KCRICTL_TEST_CRICTL")
		if crictl == "" {
			t.Skip("KCRICTL_TEST_CRICTL not set")
		}
		fakeAt(t, cur[2])
		median := func(bin string, args ...string) time.Duration {
			if len(args) == 0 {
				args = []string{"ps"}
			}
			var ds []time.Duration
			for range 15 {
				start := time.Now()
				cmd := exec.Command(bin, append([]string{"-c", emptyCfg}, args...)...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s ps: %v\n%s", bin, err, out)
				}
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			return ds[len(ds)/2]
		}
		t.Logf("startup (--version): crictl %v, kcrictl %v; ps with -r: crictl %v, kcrictl %v", median(crictl, "--version"), median(kcrictlBin, "--version"),
			median(crictl, "-r", "unix://"+cur[2], "ps"), median(kcrictlBin, "-r", "unix://"+cur[2], "ps"))
		c, k := median(crictl), median(kcrictlBin)
		t.Logf("ps with only %s alive: crictl %v, kcrictl %v (%.2fx)", cur[2], c, k, float64(k)/float64(c))
	})

	t.Run("silent", func(t *testing.T) {
		silent(t, cur[0])
		fakeAt(t, cur[1])
		start := time.Now()
		d, r := diagnose(t, nil, "-c", emptyCfg, "-t", "300ms")
		if r.code != 0 || d.Chosen != "unix:///run/crio/crio.sock" {
			t.Fatalf("exit %d: %+v", r.code, d)
		}
		check(t, d.Candidates[0], "unix://"+cur[0], "default", true, false, false, "no answer to Version within 300ms")
		v := runBin(t, nil, "-c", emptyCfg, "-t", "300ms", "version").ok(t, "version")
		if !strings.Contains(v.stdout, apitest.FakeRuntimeName) {
			t.Errorf("version: %+v", v)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("two runs with a silent first socket took %v", el)
		}
	})

	t.Run("none", func(t *testing.T) {
		r := runBin(t, nil, "-c", emptyCfg, "ps")
		if r.code == 0 {
			t.Fatal("ps with no runtime succeeded")
		}
		for _, want := range append([]string{"no CRI runtime answered on any default endpoint", "socket file does not exist", "--runtime-endpoint"}, cur...) {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("ps stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		if strings.Contains(r.stderr, "rpc error") {
			t.Errorf("bare gRPC error:\n%s", r.stderr)
		}
		e := runBin(t, nil, "-c", emptyCfg, "endpoints")
		if e.code != 1 || !strings.Contains(e.stdout, "chosen: none") {
			t.Errorf("endpoints with none: %+v", e)
		}
	})
}

func sockPaths(eps []string) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = strings.TrimPrefix(ep, "unix://")
	}
	return out
}

func listenAt(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return l
}

// fakeAt serves k8s.io/cri-client's fake CRI runtime at path.
func fakeAt(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f := fake.NewFakeRemoteRuntime()
	if err := f.Start("unix://" + path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(); os.Remove(path) })
}

// nonCRI serves gRPC without CRI, like containerd with CRI disabled.
func nonCRI(t *testing.T, path string) {
	l := listenAt(t, path)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	t.Cleanup(s.Stop)
}

// stale leaves a socket file nobody listens on.
func stale(t *testing.T, path string) {
	l := listenAt(t, path)
	l.SetUnlinkOnClose(false)
	l.Close()
}

// silent accepts connections and never answers.
func silent(t *testing.T, path string) {
	l := listenAt(t, path)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}
