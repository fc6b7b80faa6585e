package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kctr/kctr/cri"
)

func TestNRIOptions(t *testing.T) {
	o, err := resolveArgs(t)
	if err != nil {
		t.Fatal(err)
	}
	if o.server.NRI.Enable || o.server.NRI.SocketPath != cri.DefaultNRISocket || o.server.NRI.PluginDir != cri.DefaultNRIPluginDir {
		t.Errorf("NRI defaults: %+v", o.server.NRI)
	}

	path := filepath.Join(t.TempDir(), "kcrid.toml")
	content := `
nri_enable = true
nri_socket = "/tmp/from-file/nri.sock"
nri_plugin_dir = "/tmp/from-file/plugins"
nri_plugin_request_timeout = "7s"
`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err = resolveArgs(t, "--config", path, "--nri-socket", "/tmp/flag/nri.sock")
	if err != nil {
		t.Fatal(err)
	}
	want := cri.NRIConfig{
		Enable:          true,
		SocketPath:      "/tmp/flag/nri.sock",
		PluginDir:       "/tmp/from-file/plugins",
		PluginConfigDir: cri.DefaultNRIPluginConfigDir,
		RequestTimeout:  7 * time.Second,
	}
	if o.server.NRI != want {
		t.Errorf("NRI config: got %+v, want %+v", o.server.NRI, want)
	}

	if err := os.WriteFile(path, []byte("nri_plugin_request_timeout = \"soon\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveArgs(t, "--config", path); err == nil {
		t.Error("a bad nri_plugin_request_timeout was accepted")
	}
}

// nriTOML is the config enabling NRI on socket for a test kcrid, with a
// plugin dir of its own so plugins installed on the host stay out, and a
// request timeout above the 2s that critest's Synchronize specs hold a
// plugin's Synchronize open for.
func nriTOML(socket, dir string) string {
	if socket == "" {
		return ""
	}
	return fmt.Sprintf(`nri_enable = true
nri_socket = %q
nri_plugin_dir = %q
nri_plugin_config_dir = %q
nri_plugin_request_timeout = "10s"
`, socket, filepath.Join(dir, "nri-plugins"), filepath.Join(dir, "nri-conf.d"))
}
