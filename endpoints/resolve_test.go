package endpoints

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRuntimeAndImagePrecedence(t *testing.T) {
	dir := tempDir(t)
	full := filepath.Join(dir, "full.yaml")
	writeFile(t, full, "runtime-endpoint: unix:///cfg/rt.sock\nimage-endpoint: unix:///cfg/img.sock\n")
	empty := noConfig(t)

	type want struct {
		runtime   string
		rtSrc     Source
		image     string // "" means it follows the runtime endpoint
		imgSrc    Source
		reason    string
		deprecate bool
	}
	allEnv := map[string]string{EnvRuntimeEndpoint: "unix:///env/rt.sock", EnvImageEndpoint: "unix:///env/img.sock"}
	tests := []struct {
		name string
		o    Options
		want want
	}{
		{"flag beats env and config",
			Options{RuntimeEndpoint: "unix:///flag/rt.sock", ImageEndpoint: "unix:///flag/img.sock", ConfigPath: full, Getenv: env(allEnv)},
			want{"unix:///flag/rt.sock", SourceFlag, "unix:///flag/img.sock", SourceFlag, "set by --runtime-endpoint", false}},
		{"env beats config",
			Options{ConfigPath: full, Getenv: env(allEnv)},
			want{"unix:///env/rt.sock", SourceEnv, "unix:///env/img.sock", SourceEnv, "set by $CONTAINER_RUNTIME_ENDPOINT", false}},
		{"config",
			Options{ConfigPath: full, Getenv: env(nil)},
			want{"unix:///cfg/rt.sock", SourceConfig, "unix:///cfg/img.sock", SourceConfig, "set by runtime-endpoint in " + full, false}},
		{"mixed: runtime from flag, image from config",
			Options{RuntimeEndpoint: "/flag/rt.sock", ConfigPath: full, Getenv: env(nil)},
			want{"unix:///flag/rt.sock", SourceFlag, "unix:///cfg/img.sock", SourceConfig, "set by --runtime-endpoint", false}},
		{"mixed: runtime from config, image from env",
			Options{ConfigPath: full, Getenv: env(map[string]string{EnvImageEndpoint: "unix:///env/img.sock"})},
			want{"unix:///cfg/rt.sock", SourceConfig, "unix:///env/img.sock", SourceEnv, "set by runtime-endpoint in " + full, false}},
		{"image follows runtime",
			Options{Getenv: env(map[string]string{EnvRuntimeEndpoint: "unix:///env/rt.sock"}), ConfigPath: empty},
			want{"unix:///env/rt.sock", SourceEnv, "", "", "set by $CONTAINER_RUNTIME_ENDPOINT", false}},
		{"empty values are unset",
			Options{RuntimeEndpoint: "  ", Getenv: env(map[string]string{EnvRuntimeEndpoint: ""}), ConfigPath: empty},
			want{"unix:///run/containerd/containerd.sock", SourceDefault, "", "", "first default endpoint that answered Version", true}},
		{"image set, runtime from defaults",
			Options{ImageEndpoint: "unix:///flag/img.sock", ConfigPath: empty, Getenv: env(nil)},
			want{"unix:///run/containerd/containerd.sock", SourceDefault, "unix:///flag/img.sock", SourceFlag, "first default endpoint that answered Version", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newPlan(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.runtime[0]; got.ep.String() != tt.want.runtime || got.source != tt.want.rtSrc {
				t.Errorf("runtime = %v (%s), want %s (%s)", got.ep, got.source, tt.want.runtime, tt.want.rtSrc)
			}
			if tt.want.rtSrc != SourceDefault && len(p.runtime) != 1 {
				t.Errorf("explicit endpoint gave %d candidates, want 1", len(p.runtime))
			}
			switch {
			case tt.want.image == "" && p.image != nil:
				t.Errorf("image = %v, want it to follow the runtime endpoint", p.image.ep)
			case tt.want.image != "" && (p.image == nil || p.image.ep.String() != tt.want.image || p.image.source != tt.want.imgSrc):
				t.Errorf("image = %+v, want %s (%s)", p.image, tt.want.image, tt.want.imgSrc)
			}
			if r := p.reason(); r != tt.want.reason {
				t.Errorf("reason = %q, want %q", r, tt.want.reason)
			}
			if got := hasDeprecation(p.warnings); got != tt.want.deprecate {
				t.Errorf("deprecation warning = %v, want %v (warnings %q)", got, tt.want.deprecate, p.warnings)
			}
		})
	}
}

func hasDeprecation(ws []string) bool {
	n := 0
	for _, w := range ws {
		if strings.Contains(w, "deprecated") {
			n++
		}
	}
	return n == 1
}

func TestDefaultListSelection(t *testing.T) {
	dir := tempDir(t)
	legacyCfg := filepath.Join(dir, "legacy.yaml")
	writeFile(t, legacyCfg, "legacy-default-endpoints: true\n")
	empty := noConfig(t)
	tests := []struct {
		name string
		o    Options
		want []string
		src  Source
	}{
		{"current", Options{ConfigPath: empty}, DefaultEndpoints(false), SourceDefault},
		{"legacy by option", Options{ConfigPath: empty, LegacyDefaults: true}, DefaultEndpoints(true), SourceDefaultLegacy},
		{"legacy by config key", Options{ConfigPath: legacyCfg}, DefaultEndpoints(true), SourceDefaultLegacy},
		{"override", Options{ConfigPath: empty, Defaults: []string{"/a.sock", "unix:///b.sock"}}, []string{"unix:///a.sock", "unix:///b.sock"}, SourceDefault},
		{"override legacy", Options{ConfigPath: empty, LegacyDefaults: true, Defaults: []string{"unix:///a.sock"}}, []string{"unix:///a.sock"}, SourceDefaultLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Getenv = env(nil)
			p, err := newPlan(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range p.runtime {
				got = append(got, c.ep.String())
				if c.source != tt.src {
					t.Errorf("%s source = %s, want %s", c.ep, c.source, tt.src)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("candidates = %v, want %v", got, tt.want)
			}
			if !hasDeprecation(p.warnings) {
				t.Errorf("no deprecation warning in %q", p.warnings)
			}
			for _, w := range p.warnings {
				if strings.Contains(w, "deprecated") && !strings.Contains(w, tt.want[0]) {
					t.Errorf("warning %q does not list the defaults", w)
				}
			}
		})
	}
	if _, err := newPlan(Options{ConfigPath: empty, Getenv: env(nil), Defaults: []string{}}); err == nil {
		t.Error("empty default list accepted")
	}
}

func TestConfigPathPrecedence(t *testing.T) {
	dir := tempDir(t)
	flagCfg := filepath.Join(dir, "flag.yaml")
	envCfg := filepath.Join(dir, "env.yaml")
	writeFile(t, flagCfg, "runtime-endpoint: /from/flag-config.sock\n")
	writeFile(t, envCfg, "runtime-endpoint: /from/env-config.sock\n")

	p, err := newPlan(Options{ConfigPath: flagCfg, Getenv: env(map[string]string{EnvConfigFile: envCfg})})
	if err != nil {
		t.Fatal(err)
	}
	if p.configPath != flagCfg || p.configSource != SourceFlag || !p.configFound || p.runtime[0].ep.Address != "/from/flag-config.sock" {
		t.Errorf("flag: %s (%s) %v", p.configPath, p.configSource, p.runtime[0].ep)
	}

	p, err = newPlan(Options{Getenv: env(map[string]string{EnvConfigFile: envCfg})})
	if err != nil {
		t.Fatal(err)
	}
	if p.configPath != envCfg || p.configSource != SourceEnv || p.runtime[0].ep.Address != "/from/env-config.sock" {
		t.Errorf("env: %s (%s) %v", p.configPath, p.configSource, p.runtime[0].ep)
	}

	if _, err := os.Stat(DefaultConfigPath); err == nil {
		t.Skipf("%s exists on this machine; not testing the default path", DefaultConfigPath)
	}
	p, err = newPlan(Options{Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if p.configPath != DefaultConfigPath || p.configSource != SourceDefault || p.configFound {
		t.Errorf("default: %s (%s) found=%v", p.configPath, p.configSource, p.configFound)
	}
}

func TestTimeoutPrecedence(t *testing.T) {
	dir := tempDir(t)
	cfg := filepath.Join(dir, "t.yaml")
	writeFile(t, cfg, "timeout: 5\n")
	empty := noConfig(t)
	for _, tt := range []struct {
		o    Options
		want time.Duration
	}{
		{Options{ConfigPath: cfg, Timeout: 300 * time.Millisecond}, 300 * time.Millisecond},
		{Options{ConfigPath: cfg}, 5 * time.Second},
		{Options{ConfigPath: empty}, DefaultTimeout},
	} {
		tt.o.Getenv = env(nil)
		p, err := newPlan(tt.o)
		if err != nil {
			t.Fatal(err)
		}
		if p.timeout != tt.want {
			t.Errorf("timeout = %v, want %v", p.timeout, tt.want)
		}
	}
}

func TestOtherWarnings(t *testing.T) {
	dir := tempDir(t)
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, "runtime_endpoint: unix:///typo.sock\n")
	p, err := newPlan(Options{RuntimeEndpoint: "/run/x.sock", ConfigPath: cfg, Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(p.warnings, "\n")
	if !strings.Contains(joined, `unknown key "runtime_endpoint"`) || !strings.Contains(joined, "has no scheme; using unix:///run/x.sock") {
		t.Errorf("warnings = %q", p.warnings)
	}
	if strings.Contains(joined, "deprecated") {
		t.Errorf("deprecation warning for an explicit endpoint: %q", p.warnings)
	}
}
