package cri

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func TestResolveImageSubPath(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "data/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "data/file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"data/link":     "sub",
		"data/up":       "../etc",
		"data/abs":      "/etc",
		"data/out":      "../../..",
		"data/dangling": "nowhere",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		subPath string
		want    string // relative to root; "" means InvalidArgument
	}{
		{"etc", "etc"},
		{"data/sub/", "data/sub"},
		{"data/link", "data/sub"},
		{"data/up", "etc"},
		{".", "."},
		{"data/abs", ""},
		{"data/out", ""},
		{"data/dangling", ""},
		{"data/file", ""},
		{"missing", ""},
		{"../etc", ""},
	} {
		got, err := resolveImageSubPath(root, tc.subPath)
		if tc.want == "" {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("resolveImageSubPath(%q) = %q, %v; want InvalidArgument", tc.subPath, got, err)
			}
			continue
		}
		if want := filepath.Join(root, tc.want); err != nil || got != want {
			t.Errorf("resolveImageSubPath(%q) = %q, %v; want %q", tc.subPath, got, err, want)
		}
	}
}
