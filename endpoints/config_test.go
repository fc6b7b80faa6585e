package endpoints

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := tempDir(t)
	tests := []struct {
		name    string
		content string
		want    Config
		unknown []string
		errHas  string
	}{
		{
			name: "all keys",
			content: `# node config
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: "unix:///run/images.sock"
timeout: 10
debug: true
pull-image-on-create: true
disable-pull-on-run: true
legacy-default-endpoints: true
`,
			want: Config{
				RuntimeEndpoint: "unix:///run/containerd/containerd.sock", ImageEndpoint: "unix:///run/images.sock",
				Timeout: 10, Debug: true, PullImageOnCreate: true, DisablePullOnRun: true, LegacyDefaultEndpoints: true,
			},
		},
		{name: "empty file", content: ""},
		{name: "comments only", content: "# nothing here\n"},
		{name: "partial", content: "timeout: 3\n", want: Config{Timeout: 3}},
		{
			name:    "unknown keys",
			content: "runtime_endpoint: unix:///x.sock\nfoo: {a: 1}\n",
			unknown: []string{"foo", "runtime_endpoint"},
		},
		{name: "malformed", content: "runtime-endpoint: [unclosed\n", errHas: "yaml"},
		{name: "bad indentation", content: "a: b\n c: d\n  e\n", errHas: "yaml"},
		{name: "wrong type", content: "timeout: 2s\n", errHas: `"timeout"`},
		{name: "wrong bool", content: "debug: sometimes\n", errHas: `"debug"`},
		{name: "not a mapping", content: "- runtime-endpoint\n", errHas: "mapping"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "c"+string(rune('a'+i))+".yaml")
			writeFile(t, path, tt.content)
			c, err := LoadConfig(path)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadConfig error = %v, want one naming %s and containing %q", err, path, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := *c
			got.extra = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if u := c.UnknownKeys(); !reflect.DeepEqual(u, tt.unknown) && len(u)+len(tt.unknown) > 0 {
				t.Errorf("unknown keys = %v, want %v", u, tt.unknown)
			}
		})
	}
}

func TestLoadConfigMissing(t *testing.T) {
	missing := filepath.Join(tempDir(t), "nope.yaml")
	// The default file may be absent.
	c, found, err := loadConfig(missing, false)
	if err != nil || found || !reflect.DeepEqual(*c, Config{}) {
		t.Fatalf("missing default config: %+v found=%v err=%v", c, found, err)
	}
	// A file named explicitly must exist.
	_, err = LoadConfig(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing explicit config: err = %v", err)
	}
	// Through Resolve, the error says who named the file.
	_, err = Resolve(t.Context(), Options{ConfigPath: missing, Getenv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("Resolve with missing --config: %v", err)
	}
	_, err = Resolve(t.Context(), Options{Getenv: env(map[string]string{EnvConfigFile: missing})})
	if err == nil || !strings.Contains(err.Error(), "$CRI_CONFIG_FILE") {
		t.Fatalf("Resolve with missing $CRI_CONFIG_FILE: %v", err)
	}
}

func TestConfigSaveRoundTrip(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "sub", "crictl.yaml") // directory is created
	c := &Config{
		RuntimeEndpoint: "unix:///run/crio/crio.sock", ImageEndpoint: "unix:///run/img.sock",
		Timeout: 7, Debug: true, PullImageOnCreate: true, DisablePullOnRun: true,
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `runtime-endpoint: unix:///run/crio/crio.sock
image-endpoint: unix:///run/img.sock
timeout: 7
debug: true
pull-image-on-create: true
disable-pull-on-run: true
`
	if string(data) != want {
		t.Errorf("saved file:\n%s\nwant:\n%s", data, want)
	}
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip: got %+v, want %+v", got, c)
	}

	// Our own key is written only when set; unknown keys survive.
	writeFile(t, path, "zz-future: [1, 2]\nruntime-endpoint: /run/x.sock\nlegacy-default-endpoints: true\n")
	got, err = LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	got.Timeout = 4
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	want = `runtime-endpoint: /run/x.sock
image-endpoint: ""
timeout: 4
debug: false
pull-image-on-create: false
disable-pull-on-run: false
legacy-default-endpoints: true
zz-future:
- 1
- 2
`
	if string(data) != want {
		t.Errorf("saved file:\n%s\nwant:\n%s", data, want)
	}
	again, err := LoadConfig(path)
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Errorf("second round trip: %+v, %v; want %+v", again, err, got)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestConfigSaveThroughSymlink(t *testing.T) {
	dir := tempDir(t)
	real := filepath.Join(dir, "real.yaml")
	link := filepath.Join(dir, "crictl.yaml")
	writeFile(t, real, "timeout: 1\n")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := (&Config{Timeout: 9}).Save(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("symlink replaced: %v %v", fi, err)
	}
	if c, err := LoadConfig(real); err != nil || c.Timeout != 9 {
		t.Fatalf("target not updated: %+v %v", c, err)
	}
}
