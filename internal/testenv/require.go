package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// ErrNotInstalled marks a missing binary, so New* wrappers can skip locally
// instead of failing (see Require).
var ErrNotInstalled = errors.New("not installed")

// Require skips the test when ok is false, or fails it when CI=true: on a
// developer machine a missing dependency is not a bug in our code, but in CI
// a silently skipped integration test would hide a broken setup.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required (CI=true): %s", msg)
		return
	}
	t.Skipf("skipping: %s", msg)
}

// RequireRoot applies Require to "running as root": the daemons mount
// filesystems and create cgroups.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "needs root (euid is %d)", os.Geteuid())
}

// ModuleRoot returns the directory holding our go.mod. It is used to find
// binaries that `make deps` puts into <root>/.tools/bin. The source path
// recorded at build time is tried first (works from any working directory);
// `go env GOMOD` covers -trimpath builds.
func ModuleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
			if isOurGoMod(filepath.Join(dir, "go.mod")) {
				return dir, nil
			}
			if parent := filepath.Dir(dir); parent == dir {
				break
			}
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding module root: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull || !isOurGoMod(gomod) {
		return "", fmt.Errorf("finding module root: not inside module %s (GOMOD=%q)", modulePath, gomod)
	}
	return filepath.Dir(gomod), nil
}

const modulePath = "github.com/kctr/kctr"

// isOurGoMod reports whether path is the go.mod of this module, so a
// go.mod of some enclosing or unrelated module is never taken for ours.
func isOurGoMod(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}
