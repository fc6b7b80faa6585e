package criclient

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		allowed []Format
		want    Format
		err     string
	}{
		{"", []Format{FormatTable, FormatJSON}, FormatTable, ""},
		{"", []Format{FormatJSON, FormatYAML}, FormatJSON, ""},
		{"yaml", []Format{FormatJSON, FormatYAML}, FormatYAML, ""},
		{"table", []Format{FormatJSON, FormatYAML}, "", `unsupported output format "table" (use one of json, yaml)`},
		{"JSON", []Format{FormatJSON}, "", `unsupported output format "JSON"`},
	} {
		got, err := ParseFormat(tc.in, tc.allowed...)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseFormat(%q, %v) = %q, %v; want %q, %q", tc.in, tc.allowed, got, err, tc.want, tc.err)
		}
	}
}

func TestHumanSizeAndDuration(t *testing.T) {
	for n, want := range map[float64]string{0: "0B", 999: "999B", 1000: "1kB", 4_240_000: "4.24MB", 1_234_567_890: "1.23GB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%v) = %q, want %q", n, got, want)
		}
	}
	if got := humanSize4(1_234_567); got != "1.235MB" {
		t.Errorf("humanSize4 = %q", got)
	}
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond: "Less than a second", time.Second: "1 second", 42 * time.Second: "42 seconds",
		61 * time.Second: "About a minute", 5 * time.Minute: "5 minutes", 65 * time.Minute: "About an hour",
		5 * time.Hour: "5 hours", 72 * time.Hour: "3 days", 21 * 24 * time.Hour: "3 weeks",
		90 * 24 * time.Hour: "3 months", 3 * 365 * 24 * time.Hour: "3 years",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := TruncID("sha256:0123456789abcdef", "sha256:"); got != "0123456789abc" {
		t.Errorf("TruncID = %q", got)
	}
}

func TestMarshalJSONIsCRIJSON(t *testing.T) {
	b, err := MarshalJSON(&runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{{
		Id: "c1", PodSandboxId: "p1", State: runtimeapi.ContainerState_CONTAINER_EXITED,
		Metadata: &runtimeapi.ContainerMetadata{Name: "box"}, CreatedAt: 1700000000000000000,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	// camelCase names, enum names, int64 as string, defaults emitted, two-space indent.
	for _, want := range []string{`"podSandboxId": "p1"`, `"state": "CONTAINER_EXITED"`, `"createdAt": "1700000000000000000"`, `"attempt": 0`, "\n  \"containers\": ["} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
}

func TestWriteStatus(t *testing.T) {
	items := []StatusData{{
		Status: &runtimeapi.ContainerStatus{Id: "c1", State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		Info:   map[string]string{"info": `{"pid": 42}`, "plain": `"text"`},
	}}
	var buf bytes.Buffer
	if err := WriteStatus(&buf, items, FormatJSON, ""); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got["status"].(map[string]any)["id"] != "c1" || got["info"].(map[string]any)["pid"] != 42.0 || got["plain"] != "text" {
		t.Errorf("status = %v", got)
	}
	buf.Reset()
	if err := WriteStatus(&buf, append(items, items...), FormatJSON, ""); err != nil || !strings.HasPrefix(buf.String(), "[") {
		t.Errorf("two items not a list: %v %s", err, buf.String())
	}
	buf.Reset()
	if err := WriteStatus(&buf, items, FormatTemplate, "{{.status.state}} {{.info.pid}}"); err != nil || buf.String() != "CONTAINER_RUNNING 42\n" {
		t.Errorf("template: %v %q", err, buf.String())
	}
	if err := WriteStatus(&buf, items, FormatTemplate, "{{.nope.x}"); err == nil || !strings.Contains(err.Error(), "parse template") {
		t.Errorf("bad template: %v", err)
	}
	buf.Reset()
	if err := WriteStatus(&buf, items, FormatYAML, ""); err != nil || !strings.Contains(buf.String(), "state: CONTAINER_RUNNING") {
		t.Errorf("yaml: %v %s", err, buf.String())
	}
}

func TestWriteTables(t *testing.T) {
	now := time.Unix(1000, 0)
	var buf bytes.Buffer
	ctrs := []*runtimeapi.Container{{
		Id: strings.Repeat("a", 64), PodSandboxId: strings.Repeat("b", 64), State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Metadata: &runtimeapi.ContainerMetadata{Name: "box", Attempt: 2}, CreatedAt: time.Unix(940, 0).UnixNano(),
		Image:  &runtimeapi.ImageSpec{Image: "sha256:" + strings.Repeat("c", 64)},
		Labels: map[string]string{labelPodName: "web"},
	}}
	if err := WriteContainers(&buf, ctrs, ListOutput{Now: now}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"aaaaaaaaaaaaa", "ccccccccccccc", "About a minute ago", "Running", "box", "2", "bbbbbbbbbbbbb", "web", "unknown"}
	if f := strings.Split(regexpSpaces(lines[1]), "|"); strings.Join(f, "|") != strings.Join(want, "|") {
		t.Errorf("row %q, want %q", f, want)
	}

	buf.Reset()
	imgs := []*runtimeapi.Image{
		{Id: "sha256:" + strings.Repeat("d", 64), RepoTags: []string{"127.0.0.1:5000/app:1", "127.0.0.1:5000/app:latest"}, RepoDigests: []string{"127.0.0.1:5000/app@sha256:" + strings.Repeat("e", 64)}, Size: 1_500_000},
		{Id: "sha256:" + strings.Repeat("f", 64), RepoDigests: []string{"reg/untagged@sha256:" + strings.Repeat("1", 64)}, Size: 10},
	}
	if err := WriteImages(&buf, imgs, ImageListOutput{Digests: true}); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{"IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE", "127.0.0.1:5000/app", "latest", "eeeeeeeeeeeee", "ddddddddddddd", "1.5MB", "reg/untagged", "<none>", "10B"} {
		if !strings.Contains(got, want) {
			t.Errorf("images table lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 4 {
		t.Errorf("images table has %d lines, want 4 (header, two tags, untagged):\n%s", n, got)
	}
}

func regexpSpaces(s string) string {
	// Columns are separated by at least three spaces (padding 3).
	parts := strings.Split(s, "   ")
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "|")
}

func TestMatchesImage(t *testing.T) {
	img := &runtimeapi.Image{
		Id:          "sha256:0123456789abcdef",
		RepoTags:    []string{"docker.io/library/busybox:1.36", "127.0.0.1:5000/x/y:2"},
		RepoDigests: []string{"docker.io/library/busybox@sha256:feed"},
	}
	for ref, want := range map[string]bool{
		"busybox": true, "busybox:1.36": true, "library/busybox:1.36": true, "docker.io/library/busybox": true,
		"busybox:1.35": false, "127.0.0.1:5000/x/y": true, "127.0.0.1:5000/x/y:2": true, "127.0.0.1:5000/x": false,
		"0123": true, "sha256:0123456789abcdef": true, "01": false, "docker.io/library/busybox@sha256:feed": true, "alpine": false,
	} {
		if got := MatchesImage(img, ref); got != want {
			t.Errorf("MatchesImage(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestParseAuthSinceLabels(t *testing.T) {
	a, err := ParseAuth("user:pa:ss", "")
	if err != nil || a.Username != "user" || a.Password != "pa:ss" {
		t.Errorf("creds: %+v %v", a, err)
	}
	if a, err := ParseAuth("", "dXNlcjpwYXNz"); err != nil || a.Auth != "dXNlcjpwYXNz" {
		t.Errorf("auth: %+v %v", a, err)
	}
	for _, in := range [][2]string{{"u:p", "eA=="}, {":p", ""}, {"", "!!"}} {
		if _, err := ParseAuth(in[0], in[1]); err == nil {
			t.Errorf("ParseAuth(%q, %q) accepted", in[0], in[1])
		}
	}
	if a, err := ParseAuth("", ""); a != nil || err != nil {
		t.Errorf("no creds: %v %v", a, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if s, err := ParseSince("10m", now); err != nil || !s.Equal(now.Add(-10*time.Minute)) {
		t.Errorf("since 10m: %v %v", s, err)
	}
	if s, err := ParseSince("2026-01-01T00:00:00Z", now); err != nil || s.Year() != 2026 || s.Day() != 1 {
		t.Errorf("since RFC3339: %v %v", s, err)
	}
	if s, err := ParseSince("2026-01-01T10:11:12", now); err != nil || s.Hour() != 10 || s.Location() != time.Local {
		t.Errorf("since without zone: %v %v", s, err)
	}
	if _, err := ParseSince("yesterday", now); err == nil {
		t.Error("since yesterday accepted")
	}
	if m, err := ParseLabels([]string{"a=b", "c=d=e", "empty="}); err != nil || m["a"] != "b" || m["c"] != "d=e" || m["empty"] != "" {
		t.Errorf("labels: %v %v", m, err)
	}
	if _, err := ParseLabels([]string{"=x"}); err == nil {
		t.Error("label =x accepted")
	}
	if p, err := previousLog("/var/log/pods/ns_p_u/c/3.log"); err != nil || p != "/var/log/pods/ns_p_u/c/2.log" {
		t.Errorf("previousLog: %q %v", p, err)
	}
	if _, err := previousLog("/x/0.log"); err == nil {
		t.Error("previousLog of attempt 0 accepted")
	}
}

func TestLoadConfigs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// crictl's decoding: proto names, enums as numbers, unknown keys ignored.
	pod, err := LoadPodConfig(write("pod.yaml", "metadata: {name: a, namespace: b}\nlog_directory: /tmp/x\nlinux: {security_context: {namespace_options: {network: 2}}}\nextra: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pod.LogDirectory != "/tmp/x" || pod.Metadata.Uid == "" || pod.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("pod = %v", pod)
	}
	ctr, err := LoadContainerConfig(write("ctr.json", `{"metadata": {"name": "c"}, "image": {"image": "busybox"}, "log_path": "c.log", "envs": [{"key": "A", "value": "1"}]}`))
	if err != nil || ctr.LogPath != "c.log" || string(ctr.Envs[0].Value) != "1" {
		t.Errorf("ctr = %v, %v", ctr, err)
	}
	for name, data := range map[string]string{
		"bad.yaml":   "metadata: [",
		"type.json":  `{"metadata": {"name": "a", "namespace": "b", "attempt": "x"}}`,
		"nometa.yml": "hostname: x\n",
	} {
		if _, err := LoadPodConfig(write(name, data)); err == nil || !strings.HasPrefix(err.Error(), "pod config ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTemplateFuncs(t *testing.T) {
	var buf bytes.Buffer
	err := ExecuteTemplate(&buf, `{{title .a}} {{upper .a}} {{lower "X"}} {{.n}} {{.missing}} {{json .m}}`, []byte(`{"a": "hello world", "n": 12345678901, "m": {"k": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hello World HELLO WORLD x 12345678901 <no value> {\"k\":1}\n\n"; buf.String() != want {
		t.Errorf("template = %q, want %q", buf.String(), want)
	}
}

func TestWriteStatsTables(t *testing.T) {
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	ctr := func(id string, ts int64, cpu, mem uint64) *runtimeapi.ContainerStats {
		return &runtimeapi.ContainerStats{
			Attributes:    &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: "n-" + id}},
			Cpu:           &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: u(cpu)},
			Memory:        &runtimeapi.MemoryUsage{WorkingSetBytes: u(mem)},
			WritableLayer: &runtimeapi.FilesystemUsage{UsedBytes: u(4096), InodesUsed: u(7)},
		}
	}
	old := []*runtimeapi.ContainerStats{ctr("aaaa", 1e9, 1e8, 1_000_000), ctr("stopped", 1e9, 0, 0)}
	cur := []*runtimeapi.ContainerStats{ctr("aaaa", 2e9, 6e8, 2_500_000), ctr("stopped", 2e9, 0, 0), ctr("new", 2e9, 5, 5)}
	var buf bytes.Buffer
	if err := WriteContainerStats(&buf, old, cur, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || regexpSpaces(lines[1]) != "aaaa|n-aaaa|50.00|2.5MB|4.096kB|7|0B" {
		t.Errorf("stats table:\n%s", buf.String())
	}
	buf.Reset()
	WriteContainerStats(&buf, old, cur, true)
	if !strings.Contains(buf.String(), "n-stopped") {
		t.Errorf("stats -a lacks the stopped container:\n%s", buf.String())
	}
	pod := func(ts int64, cpu, mem uint64) *runtimeapi.PodSandboxStats {
		return &runtimeapi.PodSandboxStats{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "pod1", Metadata: &runtimeapi.PodSandboxMetadata{Name: "web"}},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:    &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: u(cpu)},
				Memory: &runtimeapi.MemoryUsage{WorkingSetBytes: u(mem)},
			},
		}
	}
	buf.Reset()
	WritePodStats(&buf, []*runtimeapi.PodSandboxStats{pod(1e9, 0, 1)}, []*runtimeapi.PodSandboxStats{pod(3e9, 5e8, 1_234_567)})
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 2 || regexpSpaces(lines[1]) != "web|pod1|25.00|1.235MB" {
		t.Errorf("statsp table:\n%s", buf.String())
	}
}

func TestFilterImages(t *testing.T) {
	imgs := []*runtimeapi.Image{
		{Id: "sha256:aaa", RepoTags: []string{"reg/a:1"}},
		{Id: "sha256:bbb", RepoDigests: []string{"reg/b@sha256:feed"}},
		{Id: "sha256:ccc", RepoTags: []string{"other/c:2"}},
	}
	ids := func(l []*runtimeapi.Image) string {
		var s []string
		for _, i := range l {
			s = append(s, strings.TrimPrefix(i.Id, "sha256:"))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{[]string{"dangling=true"}, "bbb"},
		{[]string{"dangling=false"}, "aaa,ccc"},
		{[]string{"reference=^reg/"}, "aaa,bbb"},
		{[]string{"reference=^reg/", "dangling=false"}, "aaa"},
		{[]string{"since=other/c:2"}, "aaa,bbb"},
		{[]string{"before=reg/a:1"}, "bbb,ccc"},
		{[]string{"before=bbb"}, "ccc"},
		{[]string{"since=reg/b@sha256:fe"}, "aaa"},
	} {
		got, err := FilterImages(imgs, tc.filters)
		if err != nil || ids(got) != tc.want {
			t.Errorf("FilterImages(%v) = %s, %v; want %s", tc.filters, ids(got), err, tc.want)
		}
	}
	for _, bad := range []string{"dangling=maybe", "reference=(", "size=1", "nokey"} {
		if _, err := FilterImages(imgs, []string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}
