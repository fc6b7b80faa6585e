package testimages

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testImages builds the real images once per test; they are what gets pushed in the
// demo, so the round trips use them rather than synthetic ones.
func testImages(t *testing.T) map[string]v1.Image {
	t.Helper()
	b := testBuilder(t)
	busybox, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	pause, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]v1.Image{"busybox": busybox, "pause": pause}
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestPushPullRoundTrip(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for repo, img := range testImages(t) {
		ref := host + "/kctr-test/" + repo + ":1.0"
		if err := Push(t.Context(), img, ref); err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(r, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := digestOf(t, pulled), digestOf(t, img); got != want {
			t.Errorf("%s: pulled %s, pushed %s", repo, got, want)
		}
		// Reading every blob back proves the registry got the content, not just a manifest.
		for _, l := range mustLayers(t, pulled) {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("%s: reading pulled layer: %v", repo, err)
			}
			rc.Close()
		}
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestIsLoopbackRegistry(t *testing.T) {
	for ref, want := range map[string]bool{
		"127.0.0.1:5000/a:b":    true,
		"localhost:5000/a":      true,
		"[::1]:5000/a":          true,
		"127.1.2.3:80/x":        true,
		"registry.example/a:b":  false,
		"busybox":               false,
		"10.0.0.1:5000/a:b":     false,
		"localhost.example/a:b": false,
	} {
		if got := isLoopbackRegistry(ref); got != want {
			t.Errorf("isLoopbackRegistry(%q) = %v, want %v", ref, got, want)
		}
	}
}

// checkLayout verifies an OCI layout holds exactly img, annotated for refName.
func checkLayout(t *testing.T, dir string, img v1.Image, refName, containerdName string) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if got := desc.Annotations[annotationRefName]; got != refName {
		t.Errorf("ref name annotation %q, want %q", got, refName)
	}
	if got := desc.Annotations[annotationImageName]; got != containerdName {
		t.Errorf("containerd name annotation %q, want %q", got, containerdName)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != configOf(t, img).Architecture {
		t.Errorf("platform %+v", desc.Platform)
	}
	got, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := digestOf(t, got), digestOf(t, img); g != w {
		t.Errorf("layout image %s, want %s", g, w)
	}
	if !slices.Equal(layerDigests(t, got), layerDigests(t, img)) {
		t.Error("layout layers differ")
	}
}

func TestWriteOCILayoutAndArchive(t *testing.T) {
	for repo, img := range testImages(t) {
		t.Run(repo, func(t *testing.T) {
			full := "docker.io/library/" + repo + ":1.0"
			dir := filepath.Join(t.TempDir(), "layout")
			if err := WriteOCILayout(img, dir, full); err != nil {
				t.Fatal(err)
			}
			checkLayout(t, dir, img, full, full)

			// Rewriting replaces the index entry; a bare tag gets no containerd name.
			if err := WriteOCILayout(img, dir, "1.0"); err != nil {
				t.Fatal(err)
			}
			checkLayout(t, dir, img, "1.0", "")

			archive := filepath.Join(t.TempDir(), repo+".oci.tar")
			if err := WriteOCIArchive(img, archive, repo+":1.0"); err != nil {
				t.Fatal(err)
			}
			unpacked := t.TempDir()
			untarFile(t, archive, unpacked)
			checkLayout(t, unpacked, img, repo+":1.0", full)

			again := filepath.Join(t.TempDir(), "again.tar")
			if err := WriteOCIArchive(img, again, repo+":1.0"); err != nil {
				t.Fatal(err)
			}
			a, _ := os.ReadFile(archive)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) {
				t.Error("two OCI archives of the same image differ")
			}
		})
	}
}

func TestWriteDockerArchive(t *testing.T) {
	for repo, img := range testImages(t) {
		t.Run(repo, func(t *testing.T) {
			ref := "example.test/kctr/" + repo + ":1.0"
			archive := filepath.Join(t.TempDir(), repo+".docker.tar")
			if err := WriteDockerArchive(img, archive, ref); err != nil {
				t.Fatal(err)
			}
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tarball.ImageFromPath(archive, &tag)
			if err != nil {
				t.Fatal(err)
			}
			gotCfg, err := got.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			wantCfg, err := img.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			if gotCfg != wantCfg {
				t.Errorf("config %s, want %s", gotCfg, wantCfg)
			}
			if !slices.Equal(layerDigests(t, got), layerDigests(t, img)) {
				t.Errorf("layers %v, want %v", layerDigests(t, got), layerDigests(t, img))
			}
			m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(archive) })
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{ref}) {
				t.Errorf("manifest.json %+v, want RepoTags [%s]", m, ref)
			}
		})
	}
}
