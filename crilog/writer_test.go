package crilog

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/cri-client/pkg/logs"
)

func TestMain(m *testing.M) {
	// The writer test runs this binary the way a shim runs a log writer.
	if IsWriterInvocation(os.Args) {
		os.Exit(RunWriter(os.Args))
	}
	os.Exit(m.Run())
}

var fixed = time.Date(2026, 11, 27, 6, 0, 0, 123456789, time.UTC)

func TestCopyLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineSize+10)
	in := "one\n\ntwo\n" + long + "\nlast without newline"
	var out bytes.Buffer
	if err := CopyLines(strings.NewReader(in), "stderr", &out, func() time.Time { return fixed }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	prefix := "2026-11-27T06:00:00.123456789Z stderr "
	want := []string{
		prefix + "F one",
		prefix + "F ",
		prefix + "F two",
		prefix + "P " + long[:MaxLineSize],
		prefix + "F " + long[MaxLineSize:],
		prefix + "F last without newline",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d = %.80q, want %.80q", i, lines[i], want[i])
		}
	}
}

// TestWriterProcess runs the writer as a shim would and reads the file back
// with the kubelet's own log reader, across a rotation.
func TestWriterProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c", "0.log")
	stdoutR, stdoutW, _ := os.Pipe()
	stderrR, stderrW, _ := os.Pipe()
	readyR, readyW, _ := os.Pipe()
	cmd := exec.Command(os.Args[0], WriterArg, path)
	cmd.ExtraFiles = []*os.File{stdoutR, stderrR, readyW}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutR.Close()
	stderrR.Close()
	readyW.Close()
	// Readiness: the pipe closes once the file is open.
	if _, err := readyR.Read(make([]byte, 1)); err == nil {
		t.Log("writer sent a readiness byte")
	}
	readyR.Close()

	stdoutW.WriteString("hello\n")
	stderrW.WriteString("oops\n")
	waitForContent(t, path, "oops")

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, path)
	stdoutW.WriteString("after rotation\n")
	stdoutW.Close()
	stderrW.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}

	var stdout, stderr bytes.Buffer
	if err := logs.ReadLogs(context.Background(), rotated, "c", &logs.LogOptions{}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello\n" || stderr.String() != "oops\n" {
		t.Fatalf("rotated file: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	stdout.Reset()
	if err := logs.ReadLogs(context.Background(), path, "c", &logs.LogOptions{}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "after rotation\n" {
		t.Fatalf("new file: stdout %q", stdout.String())
	}
}

func waitForContent(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never contained %q", path, want)
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s was not recreated after rotation", path)
}

func TestRunWriterUsage(t *testing.T) {
	if code := RunWriter([]string{"prog", "other"}); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
}
