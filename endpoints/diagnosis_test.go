package endpoints

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDiagnoseProbesEveryCandidate(t *testing.T) {
	dir := tempDir(t)
	defs := []string{
		"unix://" + dir + "/noncri.sock",
		"unix://" + dir + "/missing.sock",
		"unix://" + dir + "/silent.sock",
		"unix://" + dir + "/a.sock",
		"unix://" + dir + "/b.sock",
	}
	startNonCRI(t, defs[0])
	startSilent(t, defs[2])
	startCRI(t, defs[3], "runtime-a")
	startCRI(t, defs[4], "runtime-b")

	var dl dialLog
	start := time.Now()
	d := Diagnose(t.Context(), Options{Defaults: defs, Timeout: 200 * time.Millisecond, ConfigPath: noConfig(t), Getenv: env(nil), dial: dl.dial})
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Diagnose took %v", el)
	}
	if d.Err != "" || len(d.Candidates) != 5 {
		t.Fatalf("diagnosis = %+v", d)
	}
	checkRecord(t, d.Candidates[0], defs[0], SourceDefault, true, false, false, "unimplemented")
	checkRecord(t, d.Candidates[1], defs[1], SourceDefault, false, false, false, "does not exist")
	checkRecord(t, d.Candidates[2], defs[2], SourceDefault, true, false, false, "no answer to Version within 200ms")
	checkRecord(t, d.Candidates[3], defs[3], SourceDefault, true, true, true, "")
	checkRecord(t, d.Candidates[4], defs[4], SourceDefault, true, true, false, "") // probed although a earlier one answered
	if d.Candidates[4].RuntimeName != "runtime-b" {
		t.Errorf("b = %+v", d.Candidates[4])
	}
	if d.Chosen != defs[3] || d.Reason != "first default endpoint that answered Version" || d.ImageEndpoint != defs[3] || d.ImageSource != SourceRuntime || d.Image != nil {
		t.Errorf("diagnosis = %+v", d)
	}
	if len(dl.list()) != 4 {
		t.Errorf("dials = %v, want 4 (all but the missing one)", dl.list())
	}
	if !hasDeprecation(d.Warnings) {
		t.Errorf("warnings = %q", d.Warnings)
	}

	var tab bytes.Buffer
	if err := d.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	out := tab.String()
	t.Logf("table:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+5+3 {
		t.Fatalf("table has %d lines:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[0]); !reflect.DeepEqual(f, []string{"ENDPOINT", "SOURCE", "SOCKET", "ANSWERED", "RUNTIME", "VERSION", "API", "TIME", "ERROR"}) {
		t.Errorf("header = %q", lines[0])
	}
	if f := strings.Fields(lines[4]); len(f) != 9 || f[0] != defs[3] || f[1] != "default" || f[2] != "present" || f[3] != "yes" || f[4] != "runtime-a" || f[5] != "1.2.3" || f[6] != "v1" || f[8] != "-" {
		t.Errorf("chosen row = %q", lines[4])
	}
	if f := strings.Fields(lines[2]); f[2] != "missing" || f[3] != "no" || f[4] != "-" {
		t.Errorf("missing row = %q", lines[2])
	}
	// Columns are aligned: every row has SOURCE at the same offset.
	col := strings.Index(lines[0], "SOURCE")
	for _, l := range lines[1:6] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("row not aligned with header: %q", l)
		}
	}
	if want := "chosen: " + defs[3] + " (first default endpoint that answered Version)"; lines[6] != want {
		t.Errorf("choice line = %q, want %q", lines[6], want)
	}
	if !strings.HasPrefix(lines[7], "image: "+defs[3]+" (runtime)") || !strings.HasPrefix(lines[8], "config: ") {
		t.Errorf("trailer = %q", lines[6:])
	}

	var js bytes.Buffer
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"candidates", "chosen", "config_found", "config_path", "config_source", "error", "image", "image_endpoint", "image_source", "reason", "timeout_ms", "warnings"}
	if got := keys(top); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("JSON keys = %v, want %v", got, wantKeys)
	}
	var cands []map[string]any
	if err := json.Unmarshal(top["candidates"], &cands); err != nil {
		t.Fatal(err)
	}
	wantCand := []string{"answered", "chosen", "duration_ms", "endpoint", "error", "runtime_api_version", "runtime_name", "runtime_version", "socket_exists", "source"}
	for _, c := range cands {
		if got := keys(c); !reflect.DeepEqual(got, wantCand) {
			t.Errorf("candidate keys = %v, want %v", got, wantCand)
		}
	}
	if cands[3]["chosen"] != true || cands[3]["runtime_name"] != "runtime-a" || cands[1]["socket_exists"] != false || cands[2]["duration_ms"].(float64) < 100 {
		t.Errorf("candidates JSON = %v", cands)
	}
	var back []Candidate
	if err := json.Unmarshal(top["candidates"], &back); err != nil {
		t.Fatal(err)
	}
	for i := range back {
		if back[i].Endpoint != d.Candidates[i].Endpoint || back[i].Err != d.Candidates[i].Err || back[i].Chosen != d.Candidates[i].Chosen {
			t.Errorf("JSON round trip %d: %+v vs %+v", i, back[i], d.Candidates[i])
		}
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// An explicit endpoint is the only candidate, and is probed.
func TestDiagnoseExplicit(t *testing.T) {
	dir := tempDir(t)
	stale := "unix://" + dir + "/stale.sock"
	good := "unix://" + dir + "/good.sock"
	makeStale(t, stale)
	startCRI(t, good, "good")
	d := Diagnose(t.Context(), Options{Getenv: env(map[string]string{EnvRuntimeEndpoint: stale}), Defaults: []string{good}, ConfigPath: noConfig(t)})
	if len(d.Candidates) != 1 || d.Chosen != "" || len(d.Warnings) != 0 {
		t.Fatalf("diagnosis = %+v", d)
	}
	checkRecord(t, d.Candidates[0], stale, SourceEnv, true, false, false, "connection refused")
	var tab bytes.Buffer
	d.WriteTable(&tab)
	if !strings.Contains(tab.String(), "chosen: none (no candidate answered Version)") {
		t.Errorf("table:\n%s", tab.String())
	}

	d = Diagnose(t.Context(), Options{RuntimeEndpoint: good, ConfigPath: noConfig(t), Getenv: env(nil)})
	if d.Chosen != good || d.Reason != "set by --runtime-endpoint" || !d.Candidates[0].Chosen {
		t.Errorf("diagnosis = %+v", d)
	}
}

func TestDiagnoseImageEndpoint(t *testing.T) {
	dir := tempDir(t)
	rt := "unix://" + dir + "/rt.sock"
	img := "unix://" + dir + "/img.sock"
	nonCRI := "unix://" + dir + "/noncri.sock"
	startCRI(t, rt, "rt")
	startImageOnly(t, img)
	startNonCRI(t, nonCRI)

	d := Diagnose(t.Context(), Options{RuntimeEndpoint: rt, ImageEndpoint: img, ConfigPath: noConfig(t), Getenv: env(nil)})
	if d.Image == nil || !d.Image.Answered || d.Image.Endpoint != img || d.Image.Source != SourceFlag || d.ImageEndpoint != img {
		t.Fatalf("image = %+v", d.Image)
	}
	var tab bytes.Buffer
	d.WriteTable(&tab)
	if !strings.Contains(tab.String(), "image: "+img+" (flag): answered ImageFsInfo") {
		t.Errorf("table:\n%s", tab.String())
	}

	d = Diagnose(t.Context(), Options{RuntimeEndpoint: rt, ImageEndpoint: nonCRI, ConfigPath: noConfig(t), Getenv: env(nil)})
	if d.Image == nil || d.Image.Answered || !strings.Contains(d.Image.Err, "ImageService/ImageFsInfo is unimplemented") {
		t.Fatalf("image = %+v", d.Image)
	}
}

func TestDiagnoseBadConfig(t *testing.T) {
	dir := tempDir(t)
	cfg := dir + "/crictl.yaml"
	writeFile(t, cfg, "runtime-endpoint: [\n")
	d := Diagnose(t.Context(), Options{Getenv: env(map[string]string{EnvConfigFile: cfg})})
	if d.Err == "" || !strings.Contains(d.Err, cfg) || d.ConfigPath != cfg || d.ConfigSource != SourceEnv || !d.ConfigFound {
		t.Fatalf("diagnosis = %+v", d)
	}
	var tab, js bytes.Buffer
	d.WriteTable(&tab)
	if !strings.Contains(tab.String(), "error: config file "+cfg) || strings.Contains(tab.String(), "chosen:") {
		t.Errorf("table:\n%s", tab.String())
	}
	if err := d.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"candidates": []`) {
		t.Errorf("json: %v\n%s", err, js.String())
	}
	// Resolve fails the same way.
	if _, err := Resolve(t.Context(), Options{Getenv: env(map[string]string{EnvConfigFile: cfg})}); err == nil || errors.As(err, new(*NoEndpointError)) {
		t.Errorf("Resolve err = %v", err)
	}
}

func TestNoEndpointErrorMessage(t *testing.T) {
	e := &NoEndpointError{
		Candidates: []Candidate{
			{Endpoint: "unix:///run/containerd/containerd.sock", Source: SourceDefault, Err: "socket file does not exist"},
			{Endpoint: "unix:///run/crio/crio.sock", Source: SourceDefault, SocketExists: true, Err: "no answer to Version within 2s"},
		},
		ConfigPath: DefaultConfigPath,
	}
	want := `no CRI runtime answered on any default endpoint:
  unix:///run/containerd/containerd.sock  default  socket file does not exist
  unix:///run/crio/crio.sock              default  no answer to Version within 2s
is a runtime running? set its endpoint with --runtime-endpoint, $CONTAINER_RUNTIME_ENDPOINT or runtime-endpoint in /etc/crictl.yaml`
	if got := e.Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
