package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/cri"
)

// resolveArgs runs the app's flag parsing on args and returns the options.
func resolveArgs(t *testing.T, args ...string) (options, error) {
	t.Helper()
	var got options
	var rerr error
	app := &cli.App{Name: "kcrid", Flags: flags(), Action: func(c *cli.Context) error {
		got, rerr = resolve(c)
		return nil
	}}
	if err := app.Run(append([]string{"kcrid"}, args...)); err != nil {
		return got, err
	}
	return got, rerr
}

func TestDefaults(t *testing.T) {
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "unix:///run/kcrid/kcrid.sock" || o.server.Namespace != "k8s.io" || o.server.RootDir != "/var/lib/kcrid" ||
		o.server.StateDir != "/run/kcrid" || o.server.SandboxImage != "registry.k8s.io/pause:3.10" ||
		o.server.CNIConfDir != "/etc/cni/net.d" || !slices.Equal(o.server.CNIBinDirs, []string{"/usr/lib/cni"}) {
		t.Errorf("defaults: %+v", o)
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kcrid.toml")
	content := `
listen = "unix:///tmp/from-file.sock"
containerd_namespace = "file-ns"
sandbox_image = "example.com/pause:1"
cni_bin_dir = ["/a", "/b"]
runc_root = "/run/file-runc"
log_level = "debug"
`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := resolveArgs(t, "--config", path, "--containerd-namespace", "flag-ns")
	if err != nil {
		t.Fatal(err)
	}
	want := cri.Config{Namespace: "flag-ns", SandboxImage: "example.com/pause:1", CNIBinDirs: []string{"/a", "/b"}}
	if o.listen != "unix:///tmp/from-file.sock" || o.logLevel != "debug" || o.server.Namespace != want.Namespace ||
		o.server.SandboxImage != want.SandboxImage || !slices.Equal(o.server.CNIBinDirs, want.CNIBinDirs) ||
		o.server.Runtime.Root != "/run/file-runc" {
		t.Errorf("merged config: %+v", o)
	}

	if err := os.WriteFile(path, []byte("no_such_key = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveArgs(t, "--config", path); err == nil || !strings.Contains(err.Error(), "no_such_key") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestStreamOptions(t *testing.T) {
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.server.StreamAddress != "127.0.0.1:0" || o.server.Stream.IdleTimeout != cri.DefaultStreamIdleTimeout || o.server.Stream.TLSCertFile != "" {
		t.Errorf("stream defaults: %+v %+v", o.server.StreamAddress, o.server.Stream)
	}
	path := filepath.Join(t.TempDir(), "kcrid.toml")
	content := `
stream_address = "0.0.0.0"
stream_port = "10010"
stream_idle_timeout = "30m"
stream_tls_cert = "/etc/kcrid/cert.pem"
stream_tls_key = "/etc/kcrid/key.pem"
`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err = resolveArgs(t, "--config", path, "--stream-idle-timeout", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if o.server.StreamAddress != "0.0.0.0:10010" || o.server.Stream.IdleTimeout.String() != "1m0s" ||
		o.server.Stream.TLSCertFile != "/etc/kcrid/cert.pem" || o.server.Stream.TLSKeyFile != "/etc/kcrid/key.pem" {
		t.Errorf("stream options: %+v %+v", o.server.StreamAddress, o.server.Stream)
	}
	for _, tc := range []struct {
		args []string
		want string
		bad  bool
	}{
		{args: []string{"--stream-address", "::1", "--stream-port", "7000"}, want: "[::1]:7000"},
		{args: []string{"--stream-address", "127.0.0.1:7001"}, want: "127.0.0.1:7001"},
		{args: []string{"--stream-address", "127.0.0.1:7001", "--stream-port", "7002"}, bad: true},
		{args: []string{"--stream-port", "70000"}, bad: true},
	} {
		o, err := resolveArgs(t, tc.args...)
		if tc.bad {
			if err == nil {
				t.Errorf("%v: accepted", tc.args)
			}
			continue
		}
		if err != nil || o.server.StreamAddress != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc.args, o.server.StreamAddress, err, tc.want)
		}
	}
}
