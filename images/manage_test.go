package images_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func TestTagListGetRemove(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	pushBusybox(t, host, "kctr/busybox:1")
	svc := images.NewService(e.client, images.ServiceOptions{})
	pulled, err := svc.Pull(e.ctx, host+"/kctr/busybox:1", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := svc.Tag(e.ctx, host+"/kctr/busybox:1", "localhost/mine:v2")
	if err != nil {
		t.Fatal(err)
	}
	if tagged.ID != pulled.ID || tagged.Name != "localhost/mine:v2" {
		t.Fatalf("tag = %s %s, want localhost/mine:v2 %s", tagged.Name, tagged.ID, pulled.ID)
	}
	list, err := svc.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %d images, want 2", len(list))
	}
	byID, err := svc.Get(e.ctx, pulled.ID.Encoded()[:8])
	if err != nil {
		t.Fatalf("get by ID prefix: %v", err)
	}
	if byID.ID != pulled.ID {
		t.Fatalf("get by ID prefix found %s", byID.ID)
	}
	if _, err := svc.Get(e.ctx, "localhost/none:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("get unknown: %v, want NotFound", err)
	}

	// Removing by ID while it has two names needs force.
	if _, err := svc.Remove(e.ctx, pulled.ID.String(), images.RemoveOptions{}); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("remove multi-name image by ID: %v, want FailedPrecondition", err)
	}
	removed, err := svc.Remove(e.ctx, "localhost/mine:v2", images.RemoveOptions{})
	if err != nil || len(removed) != 1 {
		t.Fatalf("remove tag: %v %v", removed, err)
	}
	if _, err := svc.Remove(e.ctx, "localhost/mine:v2", images.RemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("remove twice: %v, want NotFound", err)
	}
	if _, err := svc.Remove(e.ctx, pulled.ID.String(), images.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := svc.List(e.ctx); len(list) != 0 {
		t.Fatalf("images left: %d", len(list))
	}
	if _, err := e.client.ContentStore().Info(e.ctx, pulled.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("config blob still in the content store after remove: %v", err)
	}
}

func TestPushRoundTrip(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	pushBusybox(t, host, "kctr/busybox:1")
	svc := images.NewService(e.client, images.ServiceOptions{})
	pulled, err := svc.Pull(e.ctx, host+"/kctr/busybox:1", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Push(e.ctx, pulled.Name, host+"/copy/busybox:pushed", images.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Remove(e.ctx, pulled.Name, images.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := svc.Pull(e.ctx, host+"/copy/busybox:pushed", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Target.Digest != pulled.Target.Digest {
		t.Fatalf("pushed copy has digest %s, want %s", again.Target.Digest, pulled.Target.Digest)
	}
	if err := svc.Push(e.ctx, "localhost/not-here:1", "", images.PushOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("push of a missing image: %v, want NotFound", err)
	}
}

func TestImportExport(t *testing.T) {
	e := newEnv(t)
	img, err := builder().Busybox()
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := images.NewService(e.client, images.ServiceOptions{})

	ociTar := filepath.Join(dir, "oci.tar")
	if err := testimages.WriteOCIArchive(img, ociTar, "localhost/oci/busybox:1"); err != nil {
		t.Fatal(err)
	}
	dockerTar := filepath.Join(dir, "docker.tar")
	if err := testimages.WriteDockerArchive(img, dockerTar, "localhost/docker/busybox:1"); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"localhost/oci/busybox:1": ociTar, "localhost/docker/busybox:1": dockerTar} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		imported, err := svc.Import(e.ctx, f, images.ImportOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		if len(imported) != 1 || imported[0].Name != name || imported[0].ID.String() != want.String() {
			t.Fatalf("import %s = %+v, want %s with ID %s", path, imported, name, want)
		}
		unpacked, err := mustImage(t, e, name).IsUnpacked(e.ctx, "overlayfs")
		if err != nil || !unpacked {
			t.Fatalf("%s not unpacked: %v", name, err)
		}
	}

	var exported bytes.Buffer
	if err := svc.Export(e.ctx, &exported, []string{"localhost/oci/busybox:1"}, images.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	other := namespaces.WithNamespace(e.ctx, testenv.Namespace(t))
	reimported, err := svc.Import(other, &exported, images.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reimported) != 1 || reimported[0].ID.String() != want.String() {
		t.Fatalf("re-import = %+v", reimported)
	}

	if _, err := svc.Import(e.ctx, bytes.NewReader([]byte("not a tarball")), images.ImportOptions{}); err == nil {
		t.Fatal("importing garbage succeeded")
	}
	if err := svc.Export(e.ctx, &exported, []string{"localhost/none:1"}, images.ExportOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("export of a missing image: %v, want NotFound", err)
	}
}
