package endpoints

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in       string
		allowTCP bool
		want     string // canonical form; "" means an error is expected
		wantBare bool
		errHas   string
	}{
		{in: "unix:///run/containerd/containerd.sock", want: "unix:///run/containerd/containerd.sock"},
		{in: "  unix:///run/crio/crio.sock\n", want: "unix:///run/crio/crio.sock"},
		{in: "unix:///run//x/../crio.sock", want: "unix:///run/crio.sock"},
		{in: "UNIX:///run/x.sock", want: "unix:///run/x.sock"},
		{in: "/var/run/cri-dockerd.sock", want: "unix:///var/run/cri-dockerd.sock", wantBare: true},
		{in: "tcp://127.0.0.1:10010", allowTCP: true, want: "tcp://127.0.0.1:10010"},
		{in: "tcp://[::1]:10010", allowTCP: true, want: "tcp://[::1]:10010"},
		{in: "tcp://localhost:10010/", allowTCP: true, want: "tcp://localhost:10010"},

		{in: "tcp://127.0.0.1:10010", errHas: "tcp endpoints are refused"},
		{in: "tcp://localhost", allowTCP: true, errHas: "tcp://host:port"},
		{in: "tcp://:10010", allowTCP: true, errHas: "tcp://host:port"},
		{in: "tcp://h:0", allowTCP: true, errHas: "invalid tcp port"},
		{in: "tcp://h:http", allowTCP: true, errHas: "port"},
		{in: "tcp://h:1/x", allowTCP: true, errHas: "path"},
		{in: "", errHas: "empty"},
		{in: "   ", errHas: "empty"},
		{in: "http://localhost:8080", errHas: `unsupported scheme "http"`},
		{in: "npipe:////./pipe/containerd-containerd", errHas: "Windows"},
		{in: "run/containerd/containerd.sock", errHas: "absolute"},
		{in: "containerd.sock", errHas: "absolute"},
		{in: "unix:/run/x.sock", errHas: "absolute"},
		{in: "unix://run/x.sock", errHas: `"run" was read as a host name`},
		{in: "unix://", errHas: "missing socket path"},
		{in: "unix:///run/x.sock?mode=1", errHas: "query"},
		{in: "://x", errHas: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ep, bare, err := parseEndpoint(tt.in, tt.allowTCP)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("parse(%q) = %v, want error containing %q", tt.in, ep, tt.errHas)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("parse(%q) error %q, want it to contain %q", tt.in, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.in, err)
			}
			if ep.String() != tt.want || bare != tt.wantBare {
				t.Fatalf("parse(%q) = %v bare=%v, want %v bare=%v", tt.in, ep, bare, tt.want, tt.wantBare)
			}
			if pub, err := ParseEndpoint(tt.in, tt.allowTCP); err != nil || pub != ep {
				t.Fatalf("ParseEndpoint(%q) = %v, %v; want %v", tt.in, pub, err, ep)
			}
		})
	}
}

func TestEndpointTarget(t *testing.T) {
	if got := (Endpoint{Scheme: "unix", Address: "/run/x.sock"}).target(); got != "unix:///run/x.sock" {
		t.Errorf("unix target = %q", got)
	}
	if got := (Endpoint{Scheme: "tcp", Address: "127.0.0.1:1"}).target(); got != "passthrough:///127.0.0.1:1" {
		t.Errorf("tcp target = %q", got)
	}
}

func TestDefaultEndpoints(t *testing.T) {
	cur := []string{
		"unix:///run/containerd/containerd.sock",
		"unix:///run/crio/crio.sock",
		"unix:///var/run/cri-dockerd.sock",
	}
	legacy := []string{
		"unix:///var/run/dockershim.sock",
		"unix:///run/containerd/containerd.sock",
		"unix:///run/crio/crio.sock",
	}
	if got := DefaultEndpoints(false); strings.Join(got, " ") != strings.Join(cur, " ") {
		t.Errorf("current defaults = %v, want %v", got, cur)
	}
	if got := DefaultEndpoints(true); strings.Join(got, " ") != strings.Join(legacy, " ") {
		t.Errorf("legacy defaults = %v, want %v", got, legacy)
	}
	DefaultEndpoints(false)[0] = "changed"
	if DefaultEndpoints(false)[0] != cur[0] {
		t.Error("DefaultEndpoints returned shared storage")
	}
}

// Bad values are reported with their value and their origin.
func TestInvalidEndpointNamesOrigin(t *testing.T) {
	dir := tempDir(t)
	cfgPath := dir + "/crictl.yaml"
	writeFile(t, cfgPath, "runtime-endpoint: npipe:////./pipe/x\nimage-endpoint: relative.sock\n")
	tests := []struct {
		name   string
		o      Options
		value  string
		origin string
		kind   string
		src    Source
	}{
		{"flag", Options{RuntimeEndpoint: "http://x"}, "http://x", "--runtime-endpoint", "runtime", SourceFlag},
		{"env", Options{Getenv: env(map[string]string{EnvRuntimeEndpoint: "tcp://h:1"})}, "tcp://h:1", "$CONTAINER_RUNTIME_ENDPOINT", "runtime", SourceEnv},
		{"config", Options{ConfigPath: cfgPath}, "npipe:////./pipe/x", "runtime-endpoint in " + cfgPath, "runtime", SourceConfig},
		{"image flag", Options{RuntimeEndpoint: "/run/x.sock", ImageEndpoint: "x.sock"}, "x.sock", "--image-endpoint", "image", SourceFlag},
		{"image env", Options{RuntimeEndpoint: "/run/x.sock", Getenv: env(map[string]string{EnvImageEndpoint: "ftp://x"})}, "ftp://x", "$IMAGE_SERVICE_ENDPOINT", "image", SourceEnv},
		{"image config", Options{RuntimeEndpoint: "/run/x.sock", ConfigPath: cfgPath}, "relative.sock", "image-endpoint in " + cfgPath, "image", SourceConfig},
		{"defaults", Options{Defaults: []string{"unix:///ok.sock", "bad"}}, "bad", "the default endpoint list", "runtime", SourceDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.Getenv == nil {
				tt.o.Getenv = env(nil)
			}
			if tt.o.ConfigPath == "" {
				tt.o.ConfigPath = noConfig(t)
			}
			_, err := Resolve(t.Context(), tt.o)
			var ee *EndpointError
			if !errors.As(err, &ee) {
				t.Fatalf("Resolve error = %v, want *EndpointError", err)
			}
			if ee.Value != tt.value || ee.Origin != tt.origin || ee.Kind != tt.kind || ee.Source != tt.src {
				t.Fatalf("got %+v", ee)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"`+tt.value+`"`) || !strings.Contains(msg, tt.origin) {
				t.Fatalf("message %q does not name value %q and origin %q", msg, tt.value, tt.origin)
			}
			// Diagnose reports the same error instead of probing.
			d := Diagnose(t.Context(), tt.o)
			if d.Err != msg || len(d.Candidates) != 0 {
				t.Fatalf("Diagnose Err = %q, candidates %v; want %q", d.Err, d.Candidates, msg)
			}
		})
	}
}
