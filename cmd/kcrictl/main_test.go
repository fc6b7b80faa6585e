package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kcrictlBin is the binary built once for the tests that run it as users
// do (integration and fallback tests).
var kcrictlBin string

// envBin passes the built binary to re-executed test processes, so the
// child of the mount-namespace test does not build it again.
const envBin = "KCRICTL_TEST_BIN"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if b := os.Getenv(envBin); b != "" {
		kcrictlBin = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kcrictl-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kcrictlBin = filepath.Join(dir, "kcrictl")
	cmd := exec.Command("go", "build", "-o", kcrictlBin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building kcrictl: %v\n", err)
		return 1
	}
	return m.Run()
}

// binResult is the outcome of running the built binary.
type binResult struct {
	stdout, stderr string
	code           int
}

// runBin runs the built kcrictl with env (nothing inherited but PATH).
func runBin(t *testing.T, env []string, args ...string) binResult {
	t.Helper()
	cmd := exec.Command(kcrictlBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kcrictl %v: %v", args, err)
	}
	return binResult{stdout.String(), stderr.String(), code}
}

func (r binResult) ok(t *testing.T, args ...string) binResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("kcrictl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// failsWith checks a non-zero exit and a single stderr line holding want.
func (r binResult) failsWith(t *testing.T, want string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit 0, want failure %q\nstdout: %s", want, r.stdout)
		return
	}
	line := strings.TrimSpace(r.stderr)
	if !strings.Contains(line, want) || strings.Contains(line, "\n") {
		t.Errorf("stderr %q, want one line containing %q", r.stderr, want)
	}
}
