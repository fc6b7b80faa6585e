package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDetachedLifecycle walks a detached container through everything a
// Docker user does with one: run -d, ps, logs, exec, stop, start, restart,
// kill, wait, inspect, rm.
func TestDetachedLifecycle(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	run := kctr(t, ns, "run", "-d", "--name", "ticker", ref, "sh", "-c", `echo started; echo to-stderr >&2; trap "echo got TERM; exit 0" TERM; while true; do sleep 0.1; done`)
	if run.code != 0 {
		t.Fatalf("run -d: %d %s", run.code, run.stderr)
	}
	id := strings.TrimSpace(run.stdout)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-digit ID", run.stdout)
	}

	ps := kctr(t, ns, "ps")
	if !strings.Contains(ps.stdout, id[:12]) || !strings.Contains(ps.stdout, "Up ") || !strings.Contains(ps.stdout, "ticker") {
		t.Fatalf("ps:\n%s", ps.stdout)
	}
	waitForLog(t, ns, "ticker", "started")
	logs := kctr(t, ns, "logs", "ticker")
	if logs.stdout != "started\n" || logs.stderr != "to-stderr\n" {
		t.Fatalf("logs: stdout %q stderr %q", logs.stdout, logs.stderr)
	}

	exec := kctr(t, ns, "exec", "-e", "X=y", "-w", "/tmp", "ticker", "sh", "-c", "echo $X $(pwd) $(id -u); exit 4")
	if exec.code != 4 || exec.stdout != "y /tmp 0\n" {
		t.Fatalf("exec: code %d stdout %q stderr %q", exec.code, exec.stdout, exec.stderr)
	}
	asUser := kctr(t, ns, "exec", "-u", "www-data", "ticker", "id", "-u")
	if strings.TrimSpace(asUser.stdout) != "33" {
		t.Fatalf("exec -u www-data: %q %q", asUser.stdout, asUser.stderr)
	}
	interactive := kctrStdin(t, ns, "from-stdin\n", "exec", "-i", "ticker", "cat")
	if interactive.stdout != "from-stdin\n" {
		t.Fatalf("exec -i: %q %q", interactive.stdout, interactive.stderr)
	}

	top := kctr(t, ns, "top", "ticker")
	if !strings.HasPrefix(top.stdout, "UID") || !strings.Contains(top.stdout, "sh -c echo started") {
		t.Fatalf("top:\n%s%s", top.stdout, top.stderr)
	}
	if r := kctr(t, ns, "rm", "ticker"); r.code == 0 || !strings.Contains(r.stderr, "is running") {
		t.Fatalf("rm of a running container: code %d stderr %q", r.code, r.stderr)
	}
	if r := kctr(t, ns, "stop", "-t", "5", "ticker"); r.code != 0 {
		t.Fatalf("stop: %s", r.stderr)
	}
	ps = kctr(t, ns, "ps", "-a")
	if !strings.Contains(ps.stdout, "Exited (0)") {
		t.Fatalf("ps -a after stop:\n%s", ps.stdout)
	}
	if logs := kctr(t, ns, "logs", "--tail", "1", "ticker"); logs.stdout != "got TERM\n" {
		t.Fatalf("logs --tail 1 after stop: %q", logs.stdout)
	}
	if r := kctr(t, ns, "ps", "-q"); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("ps -q lists a stopped container: %q", r.stdout)
	}

	if r := kctr(t, ns, "start", "ticker"); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	if r := kctr(t, ns, "restart", "-t", "5", "ticker"); r.code != 0 {
		t.Fatalf("restart: %s", r.stderr)
	}
	if r := kctr(t, ns, "kill", "-s", "TERM", id[:8]); r.code != 0 {
		t.Fatalf("kill by ID prefix: %s", r.stderr)
	}
	if r := kctr(t, ns, "wait", "ticker"); strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("wait: %q %q", r.stdout, r.stderr)
	}
	inspect := kctr(t, ns, "inspect", "ticker")
	var details []struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Status   string
			ExitCode int
		}
	}
	if err := json.Unmarshal([]byte(inspect.stdout), &details); err != nil || len(details) != 1 {
		t.Fatalf("inspect: %v\n%s", err, inspect.stdout)
	}
	if details[0].ID != id || details[0].Name != "ticker" || details[0].State.Status != "exited" {
		t.Fatalf("inspect: %+v", details[0])
	}
	if f := kctr(t, ns, "inspect", "-f", "{{.State.Status}}", "ticker"); strings.TrimSpace(f.stdout) != "exited" {
		t.Fatalf("inspect -f: %q", f.stdout)
	}
	if r := kctr(t, ns, "rm", "ticker"); r.code != 0 {
		t.Fatalf("rm: %s", r.stderr)
	}
	if r := kctr(t, ns, "ps", "-aq"); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("ps -aq after rm: %q", r.stdout)
	}
	if r := kctr(t, ns, "logs", "ticker"); r.code == 0 || !strings.Contains(r.stderr, "no such container") {
		t.Fatalf("logs of a removed container: %d %q", r.code, r.stderr)
	}
}

func TestCreateStartAttachAndForegroundLogs(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	create := kctr(t, ns, "create", "--name", "once", ref, "sh", "-c", "echo hi from create; exit 3")
	if create.code != 0 {
		t.Fatalf("create: %s", create.stderr)
	}
	if ps := kctr(t, ns, "ps", "-a", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(ps.stdout) != "once created" {
		t.Fatalf("ps after create: %q", ps.stdout)
	}
	start := kctr(t, ns, "start", "-a", "once")
	if start.code != 3 || start.stdout != "hi from create\n" {
		t.Fatalf("start -a: code %d stdout %q stderr %q", start.code, start.stdout, start.stderr)
	}

	// A foreground run without --rm keeps its container and its log.
	fg := kctr(t, ns, "run", "--name", "fg", ref, "sh", "-c", "echo attached")
	if fg.code != 0 || fg.stdout != "attached\n" {
		t.Fatalf("run: %d %q %q", fg.code, fg.stdout, fg.stderr)
	}
	if logs := kctr(t, ns, "logs", "-t", "fg"); !strings.HasSuffix(logs.stdout, " attached\n") || !strings.HasPrefix(logs.stdout, time.Now().Format("2006-")) {
		t.Fatalf("logs -t of a foreground run: %q", logs.stdout)
	}
	if ps := kctr(t, ns, "ps", "-a", "-f", "name=fg", "--format", "{{.Status}}"); !strings.HasPrefix(ps.stdout, "Exited (0)") {
		t.Fatalf("ps -f name=fg: %q", ps.stdout)
	}
	if r := kctr(t, ns, "rm", "fg", "once"); r.code != 0 {
		t.Fatalf("rm: %s", r.stderr)
	}
}

func TestLogsFollow(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	if r := kctr(t, ns, "run", "-d", "--name", "counter", ref, "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	follow := kctr(t, ns, "logs", "-f", "counter")
	if follow.stdout != "1\n2\n3\n" {
		t.Fatalf("logs -f: %q %q", follow.stdout, follow.stderr)
	}
	kctr(t, ns, "rm", "-f", "counter")
}

func TestContainerErrors(t *testing.T) {
	ns, host := setup(t)
	// Pulling makes the namespace, which every other command requires.
	if r := kctr(t, ns, "pull", "-q", host+"/library/busybox:1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, args := range [][]string{
		{"stop", "nope"}, {"start", "nope"}, {"rm", "nope"}, {"logs", "nope"}, {"exec", "nope", "true"}, {"wait", "nope"}, {"kill", "nope"},
	} {
		r := kctr(t, ns, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "no such container: nope") {
			t.Errorf("%v: code %d stderr %q", args, r.code, r.stderr)
		}
	}
	if r := kctr(t, ns, "inspect", "nope"); r.code == 0 || !strings.Contains(r.stderr, "no such container or image: nope") {
		t.Errorf("inspect nope: %d %q", r.code, r.stderr)
	}
	if r := kctr(t, ns, "inspect", "-f", "{{.Id}}", host+"/library/busybox:1"); r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Errorf("inspect of an image: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := kctr(t, ns, "ps", "-f", "color=red"); r.code == 0 || !strings.Contains(r.stderr, `unknown key "color"`) {
		t.Errorf("ps -f color=red: %d %q", r.code, r.stderr)
	}
	if r := kctr(t, ns, "logs", "--tail", "many", "x"); r.code == 0 || !strings.Contains(r.stderr, `--tail "many"`) {
		t.Errorf("logs --tail many: %d %q", r.code, r.stderr)
	}
}

func waitForLog(t *testing.T, ns, container, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(kctr(t, ns, "logs", container).stdout, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("log of %s never showed %q", container, want)
}

func TestUnknownNamespace(t *testing.T) {
	_, _ = setup(t)
	r := kctr(t, "no-such-ns", "ps")
	if r.code == 0 || !strings.Contains(r.stderr, `namespace "no-such-ns" does not exist`) {
		t.Fatalf("ps in an unknown namespace: %d %q", r.code, r.stderr)
	}
}
