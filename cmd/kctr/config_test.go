package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// runWithGlobals runs an app whose one command reports the global options
// it ended up with.
func runWithGlobals(t *testing.T, env map[string]string, args ...string) (map[string]string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	got := map[string]string{}
	app := newApp()
	app.Writer, app.ErrWriter = &bytes.Buffer{}, &bytes.Buffer{}
	app.Commands = append(app.Commands, &cli.Command{Name: "show", Action: func(c *cli.Context) error {
		for _, name := range []string{"namespace", "address", "data-root", "insecure-registry"} {
			got[name] = c.String(name)
		}
		got["cni-path"] = strings.Join(c.StringSlice("cni-path"), ",")
		return nil
	}})
	err := app.Run(append([]string{"kctr"}, append(args, "show")...))
	return got, err
}

func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kctr.toml")
	config := "namespace = \"k8s.io\"\naddress = \"/from/file.sock\"\ndata_root = \"/var/lib/from-file\"\ninsecure_registry = true\ncni_path = [\"/a\", \"/b\"]\n"
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := runWithGlobals(t, map[string]string{"CONTAINERD_ADDRESS": "/from/env.sock"}, "--config", path, "--data-root", "/from/flag")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"namespace": "k8s.io", "address": "/from/env.sock", "data-root": "/from/flag", "insecure-registry": "true", "cni-path": "/a,/b"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := runWithGlobals(t, nil, "--config", filepath.Join(dir, "missing.toml")); err == nil {
		t.Error("a missing --config file was accepted")
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("namespcae = \"x\"\n"), 0o644)
	if _, err := runWithGlobals(t, nil, "--config", bad); err == nil || !strings.Contains(err.Error(), `unknown key "namespcae"`) {
		t.Errorf("unknown key: %v", err)
	}
	broken := filepath.Join(dir, "broken.toml")
	os.WriteFile(broken, []byte("namespace = \n"), 0o644)
	if _, err := runWithGlobals(t, nil, "--config", broken); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("broken file: %v", err)
	}
	// Without --config, a missing default file is fine.
	if _, err := runWithGlobals(t, map[string]string{"KCTR_CONFIG": ""}); err != nil {
		t.Errorf("no config file: %v", err)
	}
}
