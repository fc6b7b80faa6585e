package testimages

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testBuilder shares the default cache between runs so only the first run downloads
// busybox and compiles pause.
func testBuilder(t *testing.T) *Builder {
	t.Helper()
	b := NewBuilder("")
	b.Logf = t.Logf
	return b
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of an uncompressed tar stream in order.
func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading tar entry %s: %v", hdr.Name, err)
		}
		out = append(out, tarEntry{hdr, data})
	}
}

func layerEntries(t *testing.T, l v1.Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

func byName(entries []tarEntry) map[string]tarEntry {
	m := make(map[string]tarEntry, len(entries))
	for _, e := range entries {
		m[strings.TrimSuffix(e.hdr.Name, "/")] = e
	}
	return m
}

func onlyLayer(t *testing.T, img v1.Image) v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 {
		t.Fatalf("image has %d layers, want 1", len(ls))
	}
	return ls[0]
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// extractTar unpacks a tar stream the way a container runtime would, including hard
// links, so tests can run what is inside.
func extractTar(t *testing.T, r io.Reader, root string) {
	t.Helper()
	for _, e := range readTar(t, r) {
		p := filepath.Join(root, filepath.FromSlash(e.hdr.Name))
		mode := os.FileMode(e.hdr.Mode & 0o777)
		var err error
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, e.hdr.FileInfo().Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
			}
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, e.data, mode)
			}
			if err == nil {
				err = os.Chmod(p, mode)
			}
		case tar.TypeLink:
			err = os.Link(filepath.Join(root, filepath.FromSlash(e.hdr.Linkname)), p)
		case tar.TypeSymlink:
			err = os.Symlink(e.hdr.Linkname, p)
		default:
			t.Fatalf("unexpected tar entry type %q for %s", e.hdr.Typeflag, e.hdr.Name)
		}
		if err != nil {
			t.Fatalf("extracting %s: %v", e.hdr.Name, err)
		}
	}
}

func untarFile(t *testing.T, tarPath, dir string) {
	t.Helper()
	data, err := os.ReadFile(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	extractTar(t, bytes.NewReader(data), dir)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
