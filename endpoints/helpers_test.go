package endpoints

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/fake"
)

// tempDir returns a short temporary directory: unix socket paths are
// limited to 108 bytes and t.TempDir() embeds the test name.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ep")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// under maps unix:///p endpoints to unix://dir/p, as a private mount
// namespace would put them at /p.
func under(dir string, eps []string) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = "unix://" + dir + strings.TrimPrefix(ep, "unix://")
	}
	return out
}

// sockPath returns the file path of a unix:// endpoint.
func sockPath(ep string) string { return strings.TrimPrefix(ep, "unix://") }

func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// criRuntime implements only RuntimeService.Version.
type criRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	name  string
	calls atomic.Int32
}

func (s *criRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	s.calls.Add(1)
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: s.name, RuntimeVersion: "1.2.3", RuntimeApiVersion: "v1"}, nil
}

// criImage implements only ImageService.ImageFsInfo.
type criImage struct {
	runtimeapi.UnimplementedImageServiceServer
	calls atomic.Int32
}

func (s *criImage) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	s.calls.Add(1)
	return &runtimeapi.ImageFsInfoResponse{}, nil
}

func serve(t *testing.T, path string, register func(*grpc.Server)) {
	t.Helper()
	l := listenUnix(t, path)
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
}

// startCRI serves a minimal CRI runtime (and image service) named name.
func startCRI(t *testing.T, ep, name string) *criRuntime {
	t.Helper()
	rt := &criRuntime{name: name}
	serve(t, sockPath(ep), func(s *grpc.Server) {
		runtimeapi.RegisterRuntimeServiceServer(s, rt)
		runtimeapi.RegisterImageServiceServer(s, &criImage{})
	})
	return rt
}

// startImageOnly serves only the CRI image service.
func startImageOnly(t *testing.T, ep string) *criImage {
	t.Helper()
	im := &criImage{}
	serve(t, sockPath(ep), func(s *grpc.Server) { runtimeapi.RegisterImageServiceServer(s, im) })
	return im
}

// startFakeRuntime serves k8s.io/cri-client's fake remote runtime.
func startFakeRuntime(t *testing.T, ep string) *fake.RemoteRuntime {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(sockPath(ep)), 0o755); err != nil {
		t.Fatal(err)
	}
	f := fake.NewFakeRemoteRuntime()
	if err := f.Start(ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

// startNonCRI serves gRPC with only the health service: Version is
// Unimplemented, like containerd with its CRI plugin disabled.
func startNonCRI(t *testing.T, ep string) {
	t.Helper()
	serve(t, sockPath(ep), func(s *grpc.Server) { healthpb.RegisterHealthServer(s, health.NewServer()) })
}

// startSilent accepts connections and never says a word.
func startSilent(t *testing.T, ep string) {
	t.Helper()
	l := listenUnix(t, sockPath(ep))
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

// makeStale leaves a socket file with nobody listening.
func makeStale(t *testing.T, ep string) {
	t.Helper()
	l := listenUnix(t, sockPath(ep))
	l.SetUnlinkOnClose(false)
	l.Close()
}

// dialLog counts the connections Options.dial is asked for.
type dialLog struct {
	mu      sync.Mutex
	targets []string
}

func (d *dialLog) dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	d.mu.Lock()
	d.targets = append(d.targets, target)
	d.mu.Unlock()
	return grpc.NewClient(target, opts...)
}

func (d *dialLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.targets...)
}

// env returns a Getenv over a fixed map (nothing from the real environment).
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// noConfig returns a config path that exists and is empty, so tests never
// read the host's /etc/crictl.yaml.
func noConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(tempDir(t), "crictl.yaml")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
