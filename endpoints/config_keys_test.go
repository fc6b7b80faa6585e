package endpoints

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigGetSet(t *testing.T) {
	c := &Config{}
	for _, kv := range [][2]string{
		{"runtime-endpoint", "unix:///run/containerd/containerd.sock"},
		{"image-endpoint", "/run/img.sock"},
		{"timeout", "5"},
		{"debug", "true"},
		{"pull-image-on-create", "true"},
		{"disable-pull-on-run", "false"},
		{"legacy-default-endpoints", "true"},
	} {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s): %v", kv[0], err)
		}
		if got, err := c.Get(kv[0]); err != nil || got != kv[1] {
			t.Errorf("Get(%s) = %q, %v; want %q", kv[0], got, err, kv[1])
		}
	}
	for _, kv := range [][2]string{
		{"timeout", "2s"}, {"timeout", "-1"}, {"debug", "yes please"}, {"runtime-endpoint", "http://x"}, {"runtime_endpoint", "x"},
	} {
		if err := c.Set(kv[0], kv[1]); err == nil {
			t.Errorf("Set(%s, %s) accepted", kv[0], kv[1])
		}
	}
	if _, err := c.Get("nope"); err == nil || !strings.Contains(err.Error(), "runtime-endpoint") {
		t.Errorf("Get(nope) = %v", err)
	}
	// A saved file loads back with the same values.
	p := filepath.Join(t.TempDir(), "crictl.yaml")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	d, err := LoadConfig(p)
	if err != nil || d.Timeout != 5 || !d.LegacyDefaultEndpoints || d.ImageEndpoint != "/run/img.sock" {
		t.Errorf("reloaded %+v, %v", d, err)
	}
	if len(Keys()) != 7 || Keys()[0] != "runtime-endpoint" {
		t.Errorf("Keys() = %v", Keys())
	}
}
