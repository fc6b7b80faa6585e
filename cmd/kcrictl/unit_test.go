package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	apitest "k8s.io/cri-api/pkg/apis/testing"
	"k8s.io/cri-client/pkg/fake"

	"github.com/kctr/kctr/endpoints"
)

func TestGlobalFlagsFillOptions(t *testing.T) {
	cfg := testConfig(t)
	dir := shortDir(t)
	cfgFile := writeFile(t, dir, "c.yaml", "timeout: 7\n")
	c := *cfg
	code := run([]string{"kcrictl", "-r", "/run/x.sock", "-i", "unix:///run/y.sock", "-t", "5s", "-c", cfgFile,
		"--legacy-default-endpoints", "--allow-tcp", "-D", "config", "--get", "timeout"}, &c)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, c.Stderr)
	}
	o := c.Endpoints
	if o.RuntimeEndpoint != "/run/x.sock" || o.ImageEndpoint != "unix:///run/y.sock" || o.Timeout != 5*time.Second ||
		o.ConfigPath != cfgFile || !o.LegacyDefaults || !o.AllowTCP || !c.Debug || c.CallTimeout != 5*time.Second {
		t.Errorf("options = %+v, debug=%v callTimeout=%v", o, c.Debug, c.CallTimeout)
	}
	if got := strings.TrimSpace(c.Stdout.(interface{ String() string }).String()); got != "7" {
		t.Errorf("config --get timeout = %q", got)
	}

	// Without -t the config file decides: Options.Timeout stays 0.
	c = *testConfig(t)
	if code := run([]string{"kcrictl", "config", "--list"}, &c); code != 0 || c.Endpoints.Timeout != 0 {
		t.Errorf("code %d, timeout %v", code, c.Endpoints.Timeout)
	}
	kcrictl(t, testConfig(t), "-t", "-1s", "version").fails(t, "--timeout must be positive")
}

func TestVersionAndInfo(t *testing.T) {
	_, ep := fakeRuntime(t)
	cfg := testConfig(t)
	r := kcrictl(t, cfg, "-r", ep, "version").ok(t)
	want := "Version:  0.1.0\nRuntimeName:  " + apitest.FakeRuntimeName + "\nRuntimeVersion:  0.1.0\nRuntimeApiVersion:  " + apitest.FakeVersion + "\n"
	if r.stdout != want {
		t.Errorf("version:\n%s\nwant:\n%s", r.stdout, want)
	}
	if strings.Contains(r.stderr, "deprecated") {
		t.Errorf("explicit endpoint warned: %s", r.stderr)
	}
	r = kcrictl(t, cfg, "-r", ep, "-D", "version").ok(t)
	if !strings.Contains(r.stderr, "DEBU") || !strings.Contains(r.stderr, "/runtime.v1.RuntimeService/Version") {
		t.Errorf("-D logged nothing: %s", r.stderr)
	}
	dcfg := testConfig(t)
	writeFile(t, filepath.Dir(dcfg.Endpoints.ConfigPath), "crictl.yaml", "debug: true\nruntime-endpoint: "+ep+"\n")
	if r := kcrictl(t, dcfg, "version").ok(t); !strings.Contains(r.stderr, "DEBU using runtime endpoint "+ep+" (set by runtime-endpoint in") {
		t.Errorf("debug from the config file: %s", r.stderr)
	}
	r = kcrictl(t, cfg, "-r", ep, "info").ok(t)
	var info map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info is not JSON: %v\n%s", err, r.stdout)
	}
	if _, ok := info["status"].(map[string]any)["conditions"]; !ok {
		t.Errorf("info = %s", r.stdout)
	}
	r = kcrictl(t, cfg, "-r", ep, "info", "-o", "go-template", "--template", "{{range .status.conditions}}{{.type}}={{.status}} {{end}}").ok(t)
	if strings.TrimSpace(r.stdout) != "RuntimeReady=true NetworkReady=true" {
		t.Errorf("template output %q", r.stdout)
	}
}

const podYAML = `metadata:
  name: web
  namespace: default
  uid: 5a1b
  attempt: 1
log_directory: /tmp/kcrictl-unit
labels:
  app: web
`

const ctrJSON = `{"metadata": {"name": "box"}, "image": {"image": "busybox:latest"}, "command": ["sleep", "60"],
  "labels": {"io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "default"}, "log_path": "box.log"}`

func TestPodAndContainerLifecycleWithFake(t *testing.T) {
	f, ep := fakeRuntime(t)
	cfg := injected(t, ep)
	dir := shortDir(t)
	pod := writeFile(t, dir, "pod.yaml", podYAML)
	ctr := writeFile(t, dir, "ctr.json", ctrJSON)

	podID := strings.TrimSpace(kcrictl(t, cfg, "runp", pod).ok(t).stdout)
	if podID == "" {
		t.Fatal("runp printed no ID")
	}
	ctrID := strings.TrimSpace(kcrictl(t, cfg, "create", podID, ctr, pod).ok(t).stdout)
	if ctrID == "" {
		t.Fatal("create printed no ID")
	}
	// ps shows only running containers by default.
	if out := kcrictl(t, cfg, "ps", "-q").ok(t).stdout; out != "" {
		t.Errorf("ps -q before start = %q", out)
	}
	if out := kcrictl(t, cfg, "start", ctrID).ok(t).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("start printed %q", out)
	}
	r := kcrictl(t, cfg, "ps").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER") || !strings.Contains(lines[1], "Running") || !strings.Contains(lines[1], "busybox:latest") {
		t.Errorf("ps table:\n%s", r.stdout)
	}
	for _, col := range []string{"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("ps header lacks %s: %s", col, lines[0])
		}
	}

	// JSON keeps the CRI field names, so jq scripts work.
	var list struct {
		Containers []struct {
			ID           string            `json:"id"`
			PodSandboxID string            `json:"podSandboxId"`
			State        string            `json:"state"`
			Labels       map[string]string `json:"labels"`
			Metadata     struct{ Name string }
		}
	}
	r = kcrictl(t, cfg, "ps", "-a", "-o", "json").ok(t)
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("ps -o json: %v\n%s", err, r.stdout)
	}
	if len(list.Containers) != 1 || list.Containers[0].ID != ctrID || list.Containers[0].PodSandboxID != podID ||
		list.Containers[0].State != "CONTAINER_RUNNING" || list.Containers[0].Metadata.Name != "box" {
		t.Errorf("ps -o json = %s", r.stdout)
	}
	if out := kcrictl(t, cfg, "ps", "-a", "-o", "yaml").ok(t).stdout; !strings.Contains(out, "containers:") || !strings.Contains(out, "state: CONTAINER_RUNNING") {
		t.Errorf("ps -o yaml:\n%s", out)
	}
	for _, args := range [][]string{{"--name", "^bo"}, {"--pod", podID}, {"--label", "io.kubernetes.pod.name=web"}, {"--state", "Running"}, {"--latest"}, {"--last", "1"}} {
		if out := kcrictl(t, cfg, append([]string{"ps", "-q"}, args...)...).ok(t).stdout; strings.TrimSpace(out) != ctrID {
			t.Errorf("ps -q %v = %q", args, out)
		}
	}
	for _, args := range [][]string{{"--name", "^nope"}, {"--state", "exited"}, {"--label", "app=other"}} {
		if out := kcrictl(t, cfg, append([]string{"ps", "-q"}, args...)...).ok(t).stdout; out != "" {
			t.Errorf("ps -q %v = %q", args, out)
		}
	}
	if out := kcrictl(t, cfg, "ps", "--no-trunc").ok(t).stdout; !strings.Contains(out, ctrID) {
		t.Errorf("ps --no-trunc lacks %s:\n%s", ctrID, out)
	}

	// pods
	r = kcrictl(t, cfg, "pods").ok(t)
	if !strings.HasPrefix(r.stdout, "POD ID") || !strings.Contains(r.stdout, "Ready") || !strings.Contains(r.stdout, "(default)") {
		t.Errorf("pods:\n%s", r.stdout)
	}
	for _, args := range [][]string{{"--name", "we"}, {"--namespace", "^default$"}, {"--label", "app=web"}, {"--state", "ready"}, {"--id", podID}} {
		if out := kcrictl(t, cfg, append([]string{"pods", "-q"}, args...)...).ok(t).stdout; strings.TrimSpace(out) != podID {
			t.Errorf("pods -q %v = %q", args, out)
		}
	}
	var plist struct {
		Items []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(kcrictl(t, cfg, "pods", "-o", "json").ok(t).stdout), &plist); err != nil || len(plist.Items) != 1 || plist.Items[0].State != "SANDBOX_READY" {
		t.Errorf("pods -o json: %v %+v", err, plist)
	}

	// inspect
	r = kcrictl(t, cfg, "inspect", "-o", "go-template", "--template", "{{.status.id}} {{.status.metadata.name}}", ctrID).ok(t)
	if strings.TrimSpace(r.stdout) != ctrID+" box" {
		t.Errorf("inspect template = %q", r.stdout)
	}
	r = kcrictl(t, cfg, "inspectp", podID).ok(t)
	var ip map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ip); err != nil || ip["status"].(map[string]any)["id"] != podID {
		t.Errorf("inspectp: %v %s", err, r.stdout)
	}
	if out := kcrictl(t, cfg, "inspectp", "-o", "yaml", podID).ok(t).stdout; !strings.Contains(out, "state: SANDBOX_READY") {
		t.Errorf("inspectp yaml:\n%s", out)
	}

	// exec --sync goes through ExecSync.
	kcrictl(t, cfg, "exec", "--sync", ctrID, "true").ok(t)
	if !containsCall(f.RuntimeService, "ExecSync") {
		t.Errorf("calls = %v", f.RuntimeService.GetCalls())
	}

	// rm refuses a running container; -f stops it first.
	kcrictl(t, cfg, "rm", ctrID).fails(t, "is running")
	if out := kcrictl(t, cfg, "rm", "-f", ctrID).ok(t).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("rm -f printed %q", out)
	}
	if out := kcrictl(t, cfg, "ps", "-aq").ok(t).stdout; out != "" {
		t.Errorf("ps -aq after rm = %q", out)
	}
	kcrictl(t, cfg, "rmp", podID).fails(t, "is ready")
	if out := kcrictl(t, cfg, "stopp", podID).ok(t).stdout; out != "Stopped sandbox "+podID+"\n" {
		t.Errorf("stopp printed %q", out)
	}
	if out := kcrictl(t, cfg, "rmp", podID).ok(t).stdout; out != "Removed sandbox "+podID+"\n" {
		t.Errorf("rmp printed %q", out)
	}
}

func containsCall(f interface{ GetCalls() []string }, name string) bool {
	for _, c := range f.GetCalls() {
		if c == name {
			return true
		}
	}
	return false
}

func TestRunWithFake(t *testing.T) {
	f, ep := fakeRuntime(t)
	cfg := injected(t, ep)
	dir := shortDir(t)
	pod := writeFile(t, dir, "pod.yaml", podYAML)
	ctr := writeFile(t, dir, "ctr.json", ctrJSON)
	id := strings.TrimSpace(kcrictl(t, cfg, "run", ctr, pod).ok(t).stdout)
	if out := kcrictl(t, cfg, "ps", "-q").ok(t).stdout; strings.TrimSpace(out) != id {
		t.Errorf("ps -q after run = %q, want %s", out, id)
	}
	if !slices.Contains(f.ImageService.Called, "PullImage") {
		t.Errorf("run did not pull: %v", f.ImageService.Called)
	}

	// disable-pull-on-run in the config file turns the pull off.
	f.ImageService.Called = nil
	writeFile(t, filepath.Dir(cfg.Endpoints.ConfigPath), "crictl.yaml", "disable-pull-on-run: true\n")
	pod2 := writeFile(t, dir, "pod2.yaml", strings.Replace(podYAML, "name: web", "name: web2", 1))
	kcrictl(t, cfg, "run", ctr, pod2).ok(t)
	if slices.Contains(f.ImageService.Called, "PullImage") {
		t.Errorf("run pulled despite disable-pull-on-run: %v", f.ImageService.Called)
	}
}

func TestRmpAllAndStopAll(t *testing.T) {
	_, ep := fakeRuntime(t)
	cfg := injected(t, ep)
	dir := shortDir(t)
	for i := range 3 {
		pod := writeFile(t, dir, "pod.yaml", strings.Replace(podYAML, "name: web", fmt.Sprintf("name: web%d", i), 1))
		kcrictl(t, cfg, "runp", pod).ok(t)
	}
	if out := kcrictl(t, cfg, "stop", "-a").ok(t).stdout; out != "No running containers found.\n" {
		t.Errorf("stop -a = %q", out)
	}
	if out := kcrictl(t, cfg, "rmp", "-af").ok(t).stdout; strings.Count(out, "Removed sandbox") != 3 {
		t.Errorf("rmp -af = %q", out)
	}
	if out := kcrictl(t, cfg, "pods", "-q").ok(t).stdout; out != "" {
		t.Errorf("pods after rmp -a = %q", out)
	}
}

func TestImagesWithFake(t *testing.T) {
	f, ep := fakeRuntime(t)
	cfg := injected(t, ep)
	f.ImageService.SetFakeImageSize(4_240_000)
	f.ImageService.SetFakeImages([]string{"registry.local/app:1.0", "busybox:latest"})

	r := kcrictl(t, cfg, "images").ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "IMAGE") || !strings.Contains(lines[0], "IMAGE ID") || !strings.Contains(r.stdout, "4.24MB") {
		t.Errorf("images:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "registry.local/app") || !strings.Contains(r.stdout, "1.0") {
		t.Errorf("images lacks the tag split:\n%s", r.stdout)
	}
	if out := kcrictl(t, cfg, "images", "--digests").ok(t).stdout; !strings.Contains(out, "DIGEST") {
		t.Errorf("images --digests:\n%s", out)
	}
	if out := kcrictl(t, cfg, "images", "-q").ok(t).stdout; len(strings.Fields(out)) != 2 {
		t.Errorf("images -q = %q", out)
	}
	var list struct {
		Images []struct {
			ID       string
			RepoTags []string
		}
	}
	if err := json.Unmarshal([]byte(kcrictl(t, cfg, "images", "-o", "json").ok(t).stdout), &list); err != nil || len(list.Images) != 2 {
		t.Errorf("images -o json: %v %+v", err, list)
	}

	if out := kcrictl(t, cfg, "pull", "--creds", "u:p", "registry.local/new:2").ok(t).stdout; out != "Image is up to date for registry.local/new:2\n" {
		t.Errorf("pull printed %q", out)
	}
	if out := kcrictl(t, cfg, "inspecti", "-o", "go-template", "--template", "{{index .status.repoTags 0}}", "registry.local/new:2").ok(t).stdout; strings.TrimSpace(out) != "registry.local/new:2" {
		t.Errorf("inspecti = %q", out)
	}
	kcrictl(t, cfg, "inspecti", "nosuch:1").fails(t, `no such image "nosuch:1"`)
	if out := kcrictl(t, cfg, "rmi", "registry.local/new:2").ok(t).stdout; out != "Deleted: registry.local/new:2\n" {
		t.Errorf("rmi printed %q", out)
	}
	if out := kcrictl(t, cfg, "rmi", "--prune").ok(t).stdout; strings.Count(out, "Deleted:") != 2 {
		t.Errorf("rmi --prune printed %q", out)
	}
	if out := kcrictl(t, cfg, "images", "-q").ok(t).stdout; out != "" {
		t.Errorf("images after prune = %q", out)
	}
	kcrictl(t, cfg, "imagefsinfo").ok(t)
	kcrictl(t, cfg, "pull", "--creds", "u:p", "--auth", "eA==", "x").fails(t, "mutually exclusive")
	kcrictl(t, cfg, "pull", "-u", "me", "--creds", "u:p", "x").fails(t, "--username cannot be combined")
	c := *cfg
	c.Stdin = strings.NewReader("s3cret\n")
	kcrictl(t, &c, "pull", "-u", "me", "registry.local/private:1").ok(t)

	// logs --stream and --tail exclude each other; bad stream names fail.
	kcrictl(t, cfg, "logs", "--stream", "both", "x").fails(t, `invalid --stream "both"`)
	kcrictl(t, cfg, "logs", "--stream", "stdout", "--tail", "1", "x").fails(t, "mutually exclusive")
}

func TestBadInput(t *testing.T) {
	_, ep := fakeRuntime(t)
	cfg := injected(t, ep)
	dir := shortDir(t)
	pod := writeFile(t, dir, "pod.yaml", podYAML)
	bad := writeFile(t, dir, "bad.yaml", "metadata: [unclosed\n")
	noName := writeFile(t, dir, "noname.json", `{"metadata": {"namespace": "x"}}`)
	wrongType := writeFile(t, dir, "wrong.json", `{"metadata": {"name": "a", "namespace": "b", "attempt": "many"}}`)
	ctrNoImage := writeFile(t, dir, "ctr.json", `{"metadata": {"name": "c"}}`)

	kcrictl(t, cfg, "ps", "-o", "xml").fails(t, `unsupported output format "xml"`)
	kcrictl(t, cfg, "pods", "-o", "wide").fails(t, `unsupported output format "wide"`)
	kcrictl(t, cfg, "inspect", "-o", "table", "x").fails(t, `unsupported output format "table"`)
	kcrictl(t, cfg, "ps", "-o", "go-template").fails(t, "needs --template")
	kcrictl(t, cfg, "ps", "--state", "sleeping").fails(t, `invalid --state "sleeping"`)
	kcrictl(t, cfg, "ps", "--name", "(").fails(t, "invalid --name regular expression")
	kcrictl(t, cfg, "ps", "--label", "novalue").fails(t, `invalid label "novalue"`)
	kcrictl(t, cfg, "runp", bad).fails(t, "not valid JSON or YAML")
	kcrictl(t, cfg, "runp", noName).fails(t, "metadata.name and metadata.namespace are required")
	kcrictl(t, cfg, "runp", wrongType).fails(t, "pod config")
	kcrictl(t, cfg, "runp", pathIn(dir, "missing.yaml")).fails(t, "file not found")
	kcrictl(t, cfg, "create", "p", ctrNoImage, pod).fails(t, "image.image is required")
	kcrictl(t, cfg, "inspect", "deadbeef").fails(t, `container "deadbeef"`)
	kcrictl(t, cfg, "inspectp", "deadbeef").fails(t, `pod sandbox "deadbeef"`)
	kcrictl(t, cfg, "stop", "deadbeef").fails(t, `container "deadbeef"`)
	kcrictl(t, cfg, "logs", "deadbeef").fails(t, `container "deadbeef"`)
	kcrictl(t, cfg, "logs", "--since", "yesterday", "x").fails(t, `invalid --since "yesterday"`)
	kcrictl(t, cfg, "runp").fails(t, "want exactly one argument")
}

func pathIn(dir, name string) string { return filepath.Join(dir, name) }

func TestNoEndpointPrintsDiagnosis(t *testing.T) {
	dir := shortDir(t)
	cfg := testConfig(t)
	r := kcrictl(t, cfg, "-r", "unix://"+dir+"/none.sock", "ps")
	if r.code == 0 {
		t.Fatal("ps with a missing socket succeeded")
	}
	for _, want := range []string{"no CRI runtime answered on the runtime endpoint set by --runtime-endpoint", dir + "/none.sock", "socket file does not exist"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "rpc error") {
		t.Errorf("bare gRPC error:\n%s", r.stderr)
	}
	kcrictl(t, cfg, "-r", "tcp://127.0.0.1:1", "version").fails(t, "tcp endpoints are refused")

	// endpoints: table, exit 1 when nothing answers; JSON on request.
	r = kcrictl(t, cfg, "-r", "unix://"+dir+"/none.sock", "endpoints")
	if r.code != 1 || !strings.Contains(r.stdout, "ENDPOINT") || !strings.Contains(r.stdout, "chosen: none") {
		t.Errorf("endpoints: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_, ep := fakeRuntime(t)
	r = kcrictl(t, cfg, "-r", ep, "endpoints", "-o", "json").ok(t)
	var d struct {
		Chosen     string
		Candidates []struct {
			Answered    bool   `json:"answered"`
			RuntimeName string `json:"runtime_name"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.Chosen != ep || len(d.Candidates) != 1 || !d.Candidates[0].Answered {
		t.Errorf("endpoints -o json: %v\n%s", err, r.stdout)
	}
	kcrictl(t, cfg, "endpoints", "-o", "yaml").fails(t, `unsupported output format "yaml"`)
}

func TestConfigCommand(t *testing.T) {
	cfg := testConfig(t)
	path := cfg.Endpoints.ConfigPath
	kcrictl(t, cfg, "config", "--set", "runtime-endpoint=unix:///run/containerd/containerd.sock,timeout=9").ok(t)
	kcrictl(t, cfg, "config", "debug", "true").ok(t)
	if out := kcrictl(t, cfg, "config", "--get", "runtime-endpoint").ok(t).stdout; out != "unix:///run/containerd/containerd.sock\n" {
		t.Errorf("--get = %q", out)
	}
	out := kcrictl(t, cfg, "config", "--list").ok(t).stdout
	for _, want := range []string{"KEY", "timeout", "9", "debug", "true"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list lacks %q:\n%s", want, out)
		}
	}
	c, err := endpoints.LoadConfig(path)
	if err != nil || c.Timeout != 9 || !c.Debug {
		t.Errorf("saved config %+v, %v", c, err)
	}
	kcrictl(t, cfg, "config", "--set", "timeout=soon").fails(t, "not a whole number")
	kcrictl(t, cfg, "config", "--get", "runtime_endpoint").fails(t, `unknown config key "runtime_endpoint"`)
	kcrictl(t, cfg, "config", "--set", "runtime-endpoint=http://x").fails(t, "unsupported scheme")
}

func TestCompletion(t *testing.T) {
	cfg := testConfig(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := kcrictl(t, cfg, "completion", sh).ok(t).stdout; !strings.Contains(out, "kcrictl") {
			t.Errorf("completion %s:\n%s", sh, out)
		}
	}
	kcrictl(t, cfg, "completion", "tcsh").fails(t, "unsupported shell")
}

func TestTCPEndpointNeedsAllowTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The fake's own Start only listens on unix sockets: serve it here.
	f := fake.NewFakeRemoteRuntime()
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	runtimeapi.RegisterImageServiceServer(srv, f)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	cfg := testConfig(t)
	kcrictl(t, cfg, "-r", "tcp://"+addr, "version").fails(t, "tcp endpoints are refused")
	if out := kcrictl(t, cfg, "--allow-tcp", "-r", "tcp://"+addr, "version").ok(t).stdout; !strings.Contains(out, apitest.FakeRuntimeName) {
		t.Errorf("version over tcp: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	cfg := testConfig(t)
	if r := kcrictl(t, cfg, "ps", "--bogus"); r.code == 0 || !strings.Contains(r.stderr, "flag provided but not defined: -bogus") {
		t.Errorf("unknown flag: %+v", r)
	}
	kcrictl(t, cfg, "exec", "onlyid").fails(t, "want CONTAINER-ID and a command")
	kcrictl(t, cfg, "create", "a", "b").fails(t, "want POD-ID CONTAINER-CONFIG POD-CONFIG")
	kcrictl(t, cfg, "rm").fails(t, "want at least one container ID, or -a")
	kcrictl(t, cfg, "rmp").fails(t, "want at least one pod ID, or -a")
	kcrictl(t, cfg, "rmi").fails(t, "want at least one image")
	kcrictl(t, cfg, "port-forward", "pod").fails(t, "want POD-ID and at least one")
	kcrictl(t, cfg, "stats", "-s", "0").fails(t, "--seconds must be at least 1")
}

func TestSeparateImageEndpoint(t *testing.T) {
	_, rtEP := fakeRuntime(t)
	img, imgEP := fakeRuntime(t)
	img.ImageService.SetFakeImages([]string{"only.on/image-endpoint:1"})
	cfg := testConfig(t)
	if out := kcrictl(t, cfg, "-r", rtEP, "-i", imgEP, "images", "-q").ok(t).stdout; strings.TrimSpace(out) != "only.on/image-endpoint:1" {
		t.Errorf("images via -i = %q", out)
	}
	if out := kcrictl(t, cfg, "-r", rtEP, "images", "-q").ok(t).stdout; out != "" {
		t.Errorf("images via the runtime endpoint = %q", out)
	}
	// $IMAGE_SERVICE_ENDPOINT does the same.
	cfg.Endpoints.Getenv = func(k string) string {
		if k == endpoints.EnvImageEndpoint {
			return imgEP
		}
		return ""
	}
	if out := kcrictl(t, cfg, "-r", rtEP, "images", "-q").ok(t).stdout; strings.TrimSpace(out) != "only.on/image-endpoint:1" {
		t.Errorf("images via $IMAGE_SERVICE_ENDPOINT = %q", out)
	}
}
