package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/fake"

	"github.com/kctr/kctr/endpoints"
)

// shortDir is a temp dir short enough for unix socket paths.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kcc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeRuntime serves k8s.io/cri-client's fake runtime and image service on
// a temp socket and returns it with its endpoint.
func fakeRuntime(t *testing.T) (*fake.RemoteRuntime, string) {
	t.Helper()
	ep := "unix://" + filepath.Join(shortDir(t), "cri.sock")
	f := fake.NewFakeRemoteRuntime()
	if err := f.Start(ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f, ep
}

// injected returns a Config whose services are the fake's, connected
// directly (no endpoint resolution), as the override fields allow.
func injected(t *testing.T, ep string) *Config {
	t.Helper()
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg := testConfig(t)
	cfg.RuntimeService = runtimeapi.NewRuntimeServiceClient(conn)
	cfg.ImageService = runtimeapi.NewImageServiceClient(conn)
	return cfg
}

// testConfig isolates a run from the host: no environment, an empty
// config file, a default list of sockets that do not exist (never the
// host's /run), buffers for the streams.
func testConfig(t *testing.T) *Config {
	t.Helper()
	dir := shortDir(t)
	cfgFile := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(cfgFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &Config{
		Stdin:  strings.NewReader(""),
		Stdout: &bytes.Buffer{},
		Stderr: &bytes.Buffer{},
		Endpoints: endpoints.Options{
			ConfigPath: cfgFile,
			Getenv:     func(string) string { return "" },
			Defaults:   []string{"unix://" + dir + "/default-1.sock", "unix://" + dir + "/default-2.sock"},
		},
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// kcrictl runs the app in-process with a fresh copy of cfg's settings.
func kcrictl(t *testing.T, cfg *Config, args ...string) result {
	t.Helper()
	c := *cfg
	c.Stdout, c.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
	code := run(append([]string{"kcrictl"}, args...), &c)
	return result{c.Stdout.(*bytes.Buffer).String(), c.Stderr.(*bytes.Buffer).String(), code}
}

// ok fails the test unless r exited 0.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// fails checks a non-zero exit with one stderr line containing want.
func (r result) fails(t *testing.T, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want failure %q\nstdout: %s", want, r.stdout)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
		t.Errorf("stderr has %d lines, want one: %q", n+1, r.stderr)
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
