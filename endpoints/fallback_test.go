package endpoints

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	apitest "k8s.io/cri-api/pkg/apis/testing"
)

// checkRecord compares one candidate record with expectations.
func checkRecord(t *testing.T, got Candidate, ep string, src Source, exists, answered, chosen bool, errHas string) {
	t.Helper()
	if got.Endpoint != ep || got.Source != src || got.SocketExists != exists || got.Answered != answered || got.Chosen != chosen {
		t.Errorf("record %+v, want endpoint=%s source=%s exists=%v answered=%v chosen=%v", got, ep, src, exists, answered, chosen)
	}
	if errHas == "" && got.Err != "" {
		t.Errorf("%s: unexpected error %q", ep, got.Err)
	}
	if errHas != "" && !strings.Contains(got.Err, errHas) {
		t.Errorf("%s: error %q, want it to contain %q", ep, got.Err, errHas)
	}
}

// Current order: containerd's socket serves gRPC without CRI, CRI-O's is
// missing, cri-dockerd answers.
func TestFallbackCurrentOrder(t *testing.T) {
	dir := tempDir(t)
	defs := under(dir, DefaultEndpoints(false))
	startNonCRI(t, defs[0])
	rt := startCRI(t, defs[2], "cri-dockerd-test")

	var dl dialLog
	res, err := Resolve(t.Context(), Options{Defaults: defs, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()

	if len(res.Candidates) != 3 {
		t.Fatalf("candidates = %+v", res.Candidates)
	}
	checkRecord(t, res.Candidates[0], defs[0], SourceDefault, true, false, false, "runtime.v1.RuntimeService/Version is unimplemented")
	checkRecord(t, res.Candidates[1], defs[1], SourceDefault, false, false, false, "socket file does not exist")
	checkRecord(t, res.Candidates[2], defs[2], SourceDefault, true, true, true, "")
	if c := res.Candidates[2]; c.RuntimeName != "cri-dockerd-test" || c.RuntimeVersion != "1.2.3" || c.RuntimeAPIVersion != "v1" {
		t.Errorf("chosen record = %+v", c)
	}

	// The missing socket cost no dial.
	if got := dl.list(); len(got) != 2 || got[0] != defs[0] || got[1] != defs[2] {
		t.Errorf("dials = %v, want only %s and %s", got, defs[0], defs[2])
	}

	if res.Runtime.Endpoint != defs[2] || res.Runtime.Source != SourceDefault || res.Runtime.Version.GetRuntimeName() != "cri-dockerd-test" {
		t.Errorf("runtime = %+v", res.Runtime)
	}
	if res.Reason != "first default endpoint that answered Version" {
		t.Errorf("reason = %q", res.Reason)
	}
	if !hasDeprecation(res.Warnings) {
		t.Errorf("warnings = %q", res.Warnings)
	}
	// Image follows the runtime on the same connection.
	if res.Image.Conn != res.Runtime.Conn || res.Image.Source != SourceRuntime || res.Image.Endpoint != defs[2] {
		t.Errorf("image = %+v", res.Image)
	}

	// The probe's connection is the caller's: no second dial.
	if _, err := runtimeapi.NewRuntimeServiceClient(res.Runtime.Conn).Version(t.Context(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if rt.calls.Load() != 2 || len(dl.list()) != 2 {
		t.Errorf("server saw %d Version calls, %d dials; want 2 calls on 2 dials", rt.calls.Load(), len(dl.list()))
	}
	if err := res.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Legacy order: dockershim missing, containerd's socket stale, CRI-O is
// k8s.io/cri-client's fake runtime.
func TestFallbackLegacyOrder(t *testing.T) {
	dir := tempDir(t)
	defs := under(dir, DefaultEndpoints(true))
	makeStale(t, defs[1])
	startFakeRuntime(t, defs[2])

	var dl dialLog
	res, err := Resolve(t.Context(), Options{LegacyDefaults: true, Defaults: defs, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if !strings.HasSuffix(defs[0], "/var/run/dockershim.sock") {
		t.Fatalf("legacy list starts with %s", defs[0])
	}
	checkRecord(t, res.Candidates[0], defs[0], SourceDefaultLegacy, false, false, false, "does not exist")
	checkRecord(t, res.Candidates[1], defs[1], SourceDefaultLegacy, true, false, false, "connection refused")
	checkRecord(t, res.Candidates[2], defs[2], SourceDefaultLegacy, true, true, true, "")
	if res.Runtime.Version.GetRuntimeName() != apitest.FakeRuntimeName {
		t.Errorf("version = %+v", res.Runtime.Version)
	}
	if !strings.Contains(res.Reason, "legacy") {
		t.Errorf("reason = %q", res.Reason)
	}
	if got := dl.list(); len(got) != 2 {
		t.Errorf("dials = %v, want 2 (missing dockershim not dialed)", got)
	}
}

// With every socket answering, the order alone decides, and only the
// first is dialed.
func TestOrderDecides(t *testing.T) {
	dir := tempDir(t)
	cur := under(dir, DefaultEndpoints(false))
	legacy := under(dir, DefaultEndpoints(true))
	names := map[string]string{}
	for _, ep := range append(append([]string{}, cur...), legacy[0]) {
		name := ep[strings.LastIndexByte(ep, '/')+1:]
		names[ep] = name
		startCRI(t, ep, name)
	}
	for _, tt := range []struct {
		legacy bool
		defs   []string
		want   string
	}{
		{false, cur, "containerd.sock"},
		{true, legacy, "dockershim.sock"},
	} {
		var dl dialLog
		res, err := Resolve(t.Context(), Options{LegacyDefaults: tt.legacy, Defaults: tt.defs, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
		if err != nil {
			t.Fatal(err)
		}
		if res.Runtime.Version.GetRuntimeName() != tt.want || len(res.Candidates) != 1 || len(dl.list()) != 1 {
			t.Errorf("legacy=%v: chose %s after %d candidates and %d dials, want %s first", tt.legacy, res.Runtime.Version.GetRuntimeName(), len(res.Candidates), len(dl.list()), tt.want)
		}
		res.Close()
	}
}

func TestDeadSocketBoundedByTimeout(t *testing.T) {
	dir := tempDir(t)
	silent := "unix://" + dir + "/silent.sock"
	good := "unix://" + dir + "/good.sock"
	startSilent(t, silent)
	startCRI(t, good, "good")

	start := time.Now()
	res, err := Resolve(t.Context(), Options{Defaults: []string{silent, good}, Timeout: 200 * time.Millisecond, ConfigPath: noConfig(t), Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Resolve took %v", el)
	}
	checkRecord(t, res.Candidates[0], silent, SourceDefault, true, false, false, "no answer to Version within 200ms")
	checkRecord(t, res.Candidates[1], good, SourceDefault, true, true, true, "")
	if d := res.Candidates[0].Duration; d < 100*time.Millisecond {
		t.Errorf("silent socket given up after %v, before the timeout", d)
	}

	// Only dead sockets: a diagnosis, bounded too.
	silent2 := "unix://" + dir + "/silent2.sock"
	startSilent(t, silent2)
	start = time.Now()
	_, err = Resolve(t.Context(), Options{Defaults: []string{silent, silent2}, Timeout: 200 * time.Millisecond, ConfigPath: noConfig(t), Getenv: env(nil)})
	var ne *NoEndpointError
	if !errors.As(err, &ne) || len(ne.Candidates) != 2 {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Resolve took %v", el)
	}
}

func TestNoEndpointAnswers(t *testing.T) {
	dir := tempDir(t)
	defs := under(dir, DefaultEndpoints(false))
	startNonCRI(t, defs[0])
	makeStale(t, defs[2])
	cfg := noConfig(t)

	_, err := Resolve(t.Context(), Options{Defaults: defs, ConfigPath: cfg, Getenv: env(nil)})
	var ne *NoEndpointError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %v, want *NoEndpointError", err)
	}
	if len(ne.Candidates) != 3 || ne.SetBy != "" || !hasDeprecation(ne.Warnings) {
		t.Errorf("error = %+v", ne)
	}
	for _, c := range ne.Candidates {
		if c.Chosen || c.Answered || c.Err == "" {
			t.Errorf("record %+v", c)
		}
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if len(lines) != 5 {
		t.Errorf("message has %d lines, want 5:\n%s", len(lines), msg)
	}
	for _, want := range []string{"no CRI runtime answered", defs[0], "unimplemented", defs[1], "does not exist", defs[2], "connection refused", "--runtime-endpoint", cfg} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "rpc error") {
		t.Errorf("message shows a bare gRPC error:\n%s", msg)
	}

	// All missing: no dial at all.
	var dl dialLog
	_, err = Resolve(t.Context(), Options{Defaults: under(tempDir(t), DefaultEndpoints(false)), ConfigPath: cfg, Getenv: env(nil), dial: dl.dial})
	if !errors.As(err, &ne) || len(dl.list()) != 0 {
		t.Errorf("err = %v, dials = %v", err, dl.list())
	}
}

func TestNotASocket(t *testing.T) {
	dir := tempDir(t)
	file := dir + "/file.sock"
	writeFile(t, file, "")
	if err := os.Mkdir(dir+"/dir.sock", 0o755); err != nil {
		t.Fatal(err)
	}
	var dl dialLog
	_, err := Resolve(t.Context(), Options{Defaults: []string{file, dir + "/dir.sock"}, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
	var ne *NoEndpointError
	if !errors.As(err, &ne) {
		t.Fatal(err)
	}
	checkRecord(t, ne.Candidates[0], "unix://"+file, SourceDefault, true, false, false, "regular file, not a socket")
	checkRecord(t, ne.Candidates[1], "unix://"+dir+"/dir.sock", SourceDefault, true, false, false, "directory, not a socket")
	if len(dl.list()) != 0 {
		t.Errorf("dialed %v", dl.list())
	}
}

// An explicit endpoint is the only candidate: no fallback to a default
// that would answer.
func TestExplicitEndpointNoFallback(t *testing.T) {
	dir := tempDir(t)
	good := "unix://" + dir + "/good.sock"
	other := "unix://" + dir + "/other.sock"
	missing := "unix://" + dir + "/missing.sock"
	startCRI(t, good, "good")
	startCRI(t, other, "other")
	cfgPath := dir + "/crictl.yaml"
	writeFile(t, cfgPath, "runtime-endpoint: "+good+"\n")

	for _, tt := range []struct {
		name   string
		o      Options
		src    Source
		reason string
	}{
		{"flag", Options{RuntimeEndpoint: good, ConfigPath: noConfig(t), Getenv: env(nil)}, SourceFlag, "set by --runtime-endpoint"},
		{"env", Options{ConfigPath: noConfig(t), Getenv: env(map[string]string{EnvRuntimeEndpoint: good})}, SourceEnv, "set by $CONTAINER_RUNTIME_ENDPOINT"},
		{"config", Options{ConfigPath: cfgPath, Getenv: env(nil)}, SourceConfig, "set by runtime-endpoint in " + cfgPath},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Defaults = []string{other}
			res, err := Resolve(t.Context(), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if len(res.Candidates) != 1 || res.Runtime.Endpoint != good || res.Runtime.Source != tt.src || res.Reason != tt.reason || len(res.Warnings) != 0 {
				t.Errorf("resolution = %+v", res)
			}
			checkRecord(t, res.Candidates[0], good, tt.src, true, true, true, "")
		})
	}

	_, err := Resolve(t.Context(), Options{RuntimeEndpoint: missing, Defaults: []string{other}, ConfigPath: noConfig(t), Getenv: env(nil)})
	var ne *NoEndpointError
	if !errors.As(err, &ne) || len(ne.Candidates) != 1 || ne.SetBy != "--runtime-endpoint" {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "set by --runtime-endpoint") || !strings.Contains(msg, "socket file does not exist") || strings.Contains(msg, other) {
		t.Errorf("message:\n%s", msg)
	}
}

func TestSeparateImageEndpoint(t *testing.T) {
	dir := tempDir(t)
	rtEP := "unix://" + dir + "/rt.sock"
	imgEP := "unix://" + dir + "/img.sock"
	startCRI(t, rtEP, "rt")
	im := startImageOnly(t, imgEP)

	var dl dialLog
	res, err := Resolve(t.Context(), Options{RuntimeEndpoint: rtEP, ImageEndpoint: imgEP, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Conn == res.Runtime.Conn || res.Image.Endpoint != imgEP || res.Image.Source != SourceFlag || res.Image.Version != nil || len(res.Warnings) != 0 {
		t.Errorf("image = %+v, warnings %q", res.Image, res.Warnings)
	}
	if _, err := runtimeapi.NewImageServiceClient(res.Image.Conn).ImageFsInfo(t.Context(), &runtimeapi.ImageFsInfoRequest{}); err != nil || im.calls.Load() != 1 {
		t.Errorf("image call: %v, calls %d", err, im.calls.Load())
	}
	if len(dl.list()) != 2 {
		t.Errorf("dials = %v", dl.list())
	}
	if err := res.Close(); err != nil {
		t.Error(err)
	}

	// Same endpoint spelled differently: one connection.
	res, err = Resolve(t.Context(), Options{RuntimeEndpoint: rtEP, ImageEndpoint: sockPath(rtEP), ConfigPath: noConfig(t), Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Conn != res.Runtime.Conn || res.Image.Source != SourceFlag {
		t.Errorf("image = %+v", res.Image)
	}
	res.Close()

	// A missing image socket is a warning, not a failure of runtime calls.
	res, err = Resolve(t.Context(), Options{RuntimeEndpoint: rtEP, Getenv: env(map[string]string{EnvImageEndpoint: "unix://" + dir + "/nope.sock"}), ConfigPath: noConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "$IMAGE_SERVICE_ENDPOINT") || !strings.Contains(res.Warnings[0], "does not exist") {
		t.Errorf("warnings = %q", res.Warnings)
	}
	res.Close()
}

func TestResolveCanceled(t *testing.T) {
	dir := tempDir(t)
	defs := []string{"unix://" + dir + "/a.sock", "unix://" + dir + "/b.sock"}
	startCRI(t, defs[0], "a")
	startCRI(t, defs[1], "b")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Resolve(ctx, Options{Defaults: defs, ConfigPath: noConfig(t), Getenv: env(nil)})
	var ne *NoEndpointError
	if !errors.As(err, &ne) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(ne.Candidates) != 1 || !strings.Contains(ne.Candidates[0].Err, "gave up") {
		t.Errorf("candidates = %+v", ne.Candidates)
	}
}

func TestTCPEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, &criRuntime{name: "tcp-runtime"})
	go srv.Serve(l)
	defer srv.Stop()
	ep := "tcp://" + l.Addr().String()

	if _, err := Resolve(t.Context(), Options{RuntimeEndpoint: ep, ConfigPath: noConfig(t), Getenv: env(nil)}); !errors.As(err, new(*EndpointError)) {
		t.Fatalf("tcp without AllowTCP: %v", err)
	}
	res, err := Resolve(t.Context(), Options{RuntimeEndpoint: ep, AllowTCP: true, ConfigPath: noConfig(t), Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if res.Runtime.Version.GetRuntimeName() != "tcp-runtime" || !res.Candidates[0].SocketExists {
		t.Errorf("resolution = %+v", res.Candidates)
	}
	d := Diagnose(t.Context(), Options{RuntimeEndpoint: ep, AllowTCP: true, ConfigPath: noConfig(t), Getenv: env(nil)})
	var tab bytes.Buffer
	d.WriteTable(&tab)
	if f := strings.Fields(strings.Split(tab.String(), "\n")[1]); f[0] != ep || f[2] != "n/a" || f[3] != "yes" {
		t.Errorf("table:\n%s", tab.String())
	}
}

// A socket that answers with something other than HTTP/2 (an HTTP/1 API,
// say) is skipped with a reason, quickly.
func TestNotGRPC(t *testing.T) {
	dir := tempDir(t)
	ep := "unix://" + dir + "/http.sock"
	l := listenUnix(t, sockPath(ep))
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 64)) // the client's preface
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	start := time.Now()
	_, err := Resolve(t.Context(), Options{Defaults: []string{ep}, Timeout: 3 * time.Second, ConfigPath: noConfig(t), Getenv: env(nil)})
	var ne *NoEndpointError
	if !errors.As(err, &ne) {
		t.Fatal(err)
	}
	t.Logf("reason: %s (%v)", ne.Candidates[0].Err, time.Since(start))
	if !strings.Contains(ne.Candidates[0].Err, "does not speak gRPC") || time.Since(start) > 5*time.Second {
		t.Errorf("record = %+v", ne.Candidates[0])
	}
}
