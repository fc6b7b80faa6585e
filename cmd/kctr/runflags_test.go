package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunFlags(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=yes\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"volume rw", []string{"-v", dir + ":/mnt", ref, "sh", "-c", "cat /mnt/in.txt; echo written > /mnt/out.txt"}, "from-host\n"},
		{"volume ro", []string{"-v", dir + ":/mnt:ro", ref, "sh", "-c", "touch /mnt/x 2>/dev/null && echo writable || echo read-only"}, "read-only\n"},
		{"user by name", []string{"-u", "www-data", ref, "id", "-u"}, "33\n"},
		{"user uid:gid", []string{"-u", "1234:5678", ref, "sh", "-c", "echo $(id -u):$(id -g)"}, "1234:5678\n"},
		{"entrypoint", []string{"--entrypoint", "echo", ref, "a", "b"}, "a b\n"},
		{"env file", []string{"--env-file", envFile, ref, "sh", "-c", "echo $FROM_FILE"}, "yes\n"},
		{"memory", []string{"-m", "64m", ref, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, "67108864\n"},
		{"pids limit", []string{"--pids-limit", "42", ref, "cat", "/sys/fs/cgroup/pids/pids.max"}, "42\n"},
		{"cpus", []string{"--cpus", "0.5", ref, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"}, "50000\n"},
		{"read-only", []string{"--read-only", ref, "sh", "-c", "touch /x 2>/dev/null && echo writable || echo read-only"}, "read-only\n"},
		{"cap-drop", []string{"--cap-drop", "chown", ref, "sh", "-c", "chown 1 /tmp 2>/dev/null && echo allowed || echo denied"}, "denied\n"},
		{"privileged", []string{"--privileged", ref, "sh", "-c", "mount -t tmpfs none /tmp && echo allowed || echo denied"}, "allowed\n"},
		{"not privileged", []string{ref, "sh", "-c", "mount -t tmpfs none /tmp 2>/dev/null && echo allowed || echo denied"}, "denied\n"},
		{"hostname", []string{"--hostname", "box", ref, "hostname"}, "box\n"},
		{"init", []string{"--init", ref, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo"}, "/sbin/kctr-init _kctr_init sh -c tr '\\0' ' ' < /proc/1/cmdline; echo \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kctr(t, ns, append([]string{"run", "--rm"}, tt.args...)...)
			if r.code != 0 || r.stdout != tt.want {
				t.Fatalf("code %d stdout %q stderr %q, want %q", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "written\n" {
		t.Errorf("the container did not write through the volume: %q %v", b, err)
	}
	for _, bad := range [][]string{
		{"-v", "relative:/x"}, {"-m", "lots"}, {"--restart", "sometimes"}, {"--env-file", "/nonexistent"},
	} {
		r := kctr(t, ns, append(append([]string{"run", "--rm"}, bad...), ref, "true")...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "kctr: ") {
			t.Errorf("%v: code %d stderr %q", bad, r.code, r.stderr)
		}
	}
}

// TestRestartAlways checks that containerd's restart monitor, not kctr,
// brings a container with --restart always back, and that stop means stop.
func TestRestartAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the restart monitor")
	}
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	if r := kctr(t, ns, "run", "-d", "--name", "phoenix", "--restart", "always", ref, "sh", "-c", "echo up; sleep 1; exit 1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	// The monitor looks every 10 s; two "up" lines mean it restarted once.
	deadline := time.Now().Add(40 * time.Second)
	for {
		logs := kctr(t, ns, "logs", "phoenix")
		if strings.Count(logs.stdout, "up\n") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted within 40 s; logs %q", logs.stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := kctr(t, ns, "stop", "-t", "1", "phoenix"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := kctr(t, ns, "rm", "-f", "phoenix"); r.code != 0 {
		t.Fatal(r.stderr)
	}
}

// TestInitForwardsSignals: sleep as PID 1 ignores SIGTERM and must be
// killed (137); under --init it gets the TERM and dies of it (143).
func TestInitForwardsSignals(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	for _, tt := range []struct {
		flags []string
		want  string
	}{{[]string{"--init"}, "143"}, {nil, "137"}} {
		args := append(append([]string{"run", "-d"}, tt.flags...), ref, "sleep", "1000")
		run := kctr(t, ns, args...)
		if run.code != 0 {
			t.Fatal(run.stderr)
		}
		id := strings.TrimSpace(run.stdout)
		if r := kctr(t, ns, "stop", "-t", "2", id); r.code != 0 {
			t.Fatal(r.stderr)
		}
		code := kctr(t, ns, "inspect", "-f", "{{.State.ExitCode}}", id)
		if strings.TrimSpace(code.stdout) != tt.want {
			t.Errorf("run %v: exit code %q, want %s", tt.flags, code.stdout, tt.want)
		}
		kctr(t, ns, "rm", id)
	}
}
