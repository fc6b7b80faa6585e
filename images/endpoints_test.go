package images

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeHostsFile(t testing.TB, root, host, content string) {
	t.Helper()
	dir := filepath.Join(root, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEndpoints(t *testing.T) {
	root := t.TempDir()
	writeHostsFile(t, root, "_default", `
server = "http://127.0.0.1:5000"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
`)
	writeHostsFile(t, root, "registry.example:5443", `
server = "https://registry.example:5443"
[host."https://mirror.example"]
  capabilities = ["pull"]
`)
	ctx := context.Background()
	tests := []struct {
		name string
		opts RegistryOptions
		host string
		want []Endpoint
	}{
		{"no hosts dir", RegistryOptions{}, "quay.io", []Endpoint{{URL: "https://quay.io/v2", Pull: true, Resolve: true, Push: true}}},
		{"docker hub", RegistryOptions{}, "docker.io", []Endpoint{{URL: "https://registry-1.docker.io/v2", Pull: true, Resolve: true, Push: true}}},
		{"insecure", RegistryOptions{Insecure: true}, "quay.io", []Endpoint{{URL: "http://quay.io/v2", Pull: true, Resolve: true, Push: true}}},
		{"default mirror", RegistryOptions{HostsDir: root}, "registry.k8s.io", []Endpoint{
			{URL: "http://127.0.0.1:5000/v2", Pull: true, Resolve: true},
			{URL: "http://127.0.0.1:5000/v2", Pull: true, Resolve: true, Push: true},
		}},
		{"host with port", RegistryOptions{HostsDir: root}, "registry.example:5443", []Endpoint{
			{URL: "https://mirror.example/v2", Pull: true},
			{URL: "https://registry.example:5443/v2", Pull: true, Resolve: true, Push: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Endpoints(ctx, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Endpoints(%s) = %+v\nwant %+v", tt.host, got, tt.want)
			}
		})
	}
}

func TestEndpointsBrokenHostsFile(t *testing.T) {
	root := t.TempDir()
	writeHostsFile(t, root, "broken.example", "server = [not toml")
	_, err := RegistryOptions{HostsDir: root}.Endpoints(context.Background(), "broken.example")
	if err == nil {
		t.Fatal("a broken hosts.toml was accepted")
	}
}

// FuzzHostsFile feeds arbitrary hosts.toml content through the same path a
// pull takes; it must never panic, only succeed or return an error.
func FuzzHostsFile(f *testing.F) {
	f.Add("server = \"https://r.example\"\n[host.\"https://m.example\"]\n  capabilities = [\"pull\"]\n  skip_verify = true\n")
	f.Add("[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n")
	f.Add("server = 1")
	f.Add("[host]\n[host.\"x\"]\nca = [\"a\", 2]\n")
	// One directory for every input: creating one per input would make
	// the file system, not the parser, what the fuzzer measures.
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		writeHostsFile(t, root, "fuzz.example", content)
		endpoints, err := RegistryOptions{HostsDir: root}.Endpoints(context.Background(), "fuzz.example")
		if err != nil {
			return
		}
		for _, e := range endpoints {
			if e.URL == "" {
				t.Fatalf("endpoint without URL from %q", content)
			}
		}
	})
}
