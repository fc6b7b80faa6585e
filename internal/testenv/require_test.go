package testenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTB records what Require asks for instead of ending the test.
type fakeTB struct {
	testing.TB
	fatal, skip bool
}

// Only what Require uses is implemented; anything else would panic on the
// nil embedded TB and show up as a test failure.
func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.fatal = true }
func (f *fakeTB) Skipf(string, ...any)  { f.skip = true }

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci          string
		ok          bool
		fatal, skip bool
	}{
		{"", true, false, false},
		{"", false, false, true},
		{"false", false, false, true},
		{"true", false, true, false},
		{"true", true, false, false},
	} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		Require(f, tc.ok, "thing %d", 1)
		if f.fatal != tc.fatal || f.skip != tc.skip {
			t.Errorf("CI=%q ok=%v: fatal=%v skip=%v, want %v %v", tc.ci, tc.ok, f.fatal, f.skip, tc.fatal, tc.skip)
		}
	}
}

func TestMissingBinaryIsNotInstalled(t *testing.T) {
	empty := t.TempDir()
	_, err := StartContainerd(context.Background(), ContainerdOptions{Version: "2.4", BinDir: empty})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("got %v, want ErrNotInstalled", err)
	}
	if _, err := StartContainerd(context.Background(), ContainerdOptions{Version: "1.7"}); err == nil || errors.Is(err, ErrNotInstalled) {
		t.Fatalf("unsupported version: got %v", err)
	}
	t.Setenv("KCTR_TEST_CONTAINERD", "2.4")
	if v, err := ContainerdVersion(""); v != "2.4" || err != nil {
		t.Errorf("ContainerdVersion from env: %q %v", v, err)
	}
	t.Setenv("KCTR_TEST_CONTAINERD", "")
	if v, _ := ContainerdVersion(""); v != "1.6" {
		t.Errorf("default version %q", v)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if !isOurGoMod(filepath.Join(root, "go.mod")) {
		t.Errorf("%s/go.mod is not ours", root)
	}
	wd, _ := os.Getwd()
	if filepath.Join(root, "internal", "testenv") != wd {
		t.Errorf("root %s, test dir %s", root, wd)
	}
}

func TestMountinfoUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:             "/a/b",
		`/a\040b`:          "/a b",
		`/x\011y\012z\134`: "/x\ty\nz\\",
		`/trailing\04`:     `/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStartContainerdFailure: a daemon that dies at startup yields an
// error carrying its log, and its temp dir is removed.
func TestStartContainerdFailure(t *testing.T) {
	RequireRoot(t)
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"boom: config was $2\" >&2\nexit 3\n"
	for _, name := range []string{"containerd", "containerd-shim-runc-v2"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := StartContainerd(context.Background(), ContainerdOptions{Version: "1.6", BinDir: bin})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "boom: config was /") || !strings.Contains(msg, "exit status 3") {
		t.Fatalf("error lacks the log tail / exit status: %v", err)
	}
	cfg := msg[strings.Index(msg, "boom: config was ")+len("boom: config was "):]
	cfg = strings.Fields(cfg)[0]
	if _, err := os.Stat(filepath.Dir(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left behind (%v)", filepath.Dir(cfg), err)
	}
}
