package images_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func pushBusybox(t *testing.T, host, repo string) (digest string) {
	t.Helper()
	img, err := builder().Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(context.Background(), img, host+"/"+repo); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestPullUnpacksAndReportsProgress(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	manifestDigest := pushBusybox(t, host, "kctr/busybox:1")

	svc := images.NewService(e.client, images.ServiceOptions{})
	var last []images.BlobProgress
	img, err := svc.Pull(e.ctx, host+"/kctr/busybox:1", images.PullOptions{
		Progress: func(p []images.BlobProgress) { last = p },
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != host+"/kctr/busybox:1" || img.Target.Digest.String() != manifestDigest {
		t.Fatalf("pulled %s @ %s, want %s/kctr/busybox:1 @ %s", img.Name, img.Target.Digest, host, manifestDigest)
	}
	if !img.Complete || img.ID == img.Target.Digest || img.Size == 0 {
		t.Fatalf("image not complete or without config: %+v", img)
	}
	if len(img.Config.Cmd) == 0 || img.Config.Cmd[0] != "sh" {
		t.Fatalf("config Cmd = %v, want [sh]", img.Config.Cmd)
	}
	if len(last) < 3 {
		t.Fatalf("progress saw %d blobs, want manifest, config and layer", len(last))
	}
	for _, b := range last {
		if b.Status != images.BlobDone {
			t.Errorf("blob %s ended %s, want done", b.Digest, b.Status)
		}
	}
	unpacked, err := mustImage(t, e, img.Name).IsUnpacked(e.ctx, "overlayfs")
	if err != nil || !unpacked {
		t.Fatalf("image not unpacked into overlayfs (err %v)", err)
	}

	// A second pull finds everything in place.
	if _, err := svc.Pull(e.ctx, host+"/kctr/busybox:1", images.PullOptions{
		Progress: func(p []images.BlobProgress) { last = p },
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range last {
		if b.Status != images.BlobExists {
			t.Errorf("second pull: blob %s is %s, want exists", b.Digest, b.Status)
		}
	}
}

func TestPullUnknownImageIsNotFound(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	svc := images.NewService(e.client, images.ServiceOptions{})
	_, err := svc.Pull(e.ctx, host+"/no/such:tag", images.PullOptions{})
	if !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v, want NotFound", err)
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("error %q does not name the registry %s", err, host)
	}
}

func TestPullBadReference(t *testing.T) {
	e := newEnv(t)
	svc := images.NewService(e.client, images.ServiceOptions{})
	_, err := svc.Pull(e.ctx, "busybox:bad tag", images.PullOptions{})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "busybox:bad tag") {
		t.Fatalf("err = %v, want InvalidArgument naming the reference", err)
	}
}

func TestPullCorruptBlobLeavesNothingBehind(t *testing.T) {
	e := newEnv(t)
	// Layers no other test has pulled: containerd shares blobs between
	// namespaces, so a known layer would never be downloaded at all.
	img, err := testimages.MultiLayer(2, 256<<10, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	host := testenv.NewRegistry(t, testenv.RegistryOptions{Wrap: testenv.CorruptBlob(layerDigest.String())})
	if err := testimages.Push(context.Background(), img, host+"/kctr/corrupt:1"); err != nil {
		t.Fatal(err)
	}

	svc := images.NewService(e.client, images.ServiceOptions{})
	_, err = svc.Pull(e.ctx, host+"/kctr/corrupt:1", images.PullOptions{})
	if !errdefs.IsDataLoss(err) {
		t.Fatalf("err = %v, want a digest (DataLoss) error", err)
	}
	if _, err := e.client.ImageService().Get(e.ctx, host+"/kctr/corrupt:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("image record after failed pull: err = %v, want NotFound", err)
	}
	if _, err := e.client.ContentStore().Info(e.ctx, layerDigestOf(layerDigest.String())); !errdefs.IsNotFound(err) {
		t.Fatalf("corrupt layer in content store after failed pull: err = %v", err)
	}
	assertNoSnapshots(t, e)
}

// An image whose bottom layers are already unpacked (a base shared with
// an image pulled before) fetches only its top layers; they must not wait
// for the others.
func TestPullSharedBaseLayers(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	svc := images.NewService(e.client, images.ServiceOptions{
		UnpackInProcess: func() (bool, error) { return images.SharesDaemonFilesystem(daemon.Address()) },
	})
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()

	refs := pushSharedBase(t, host, "one-by-one")
	for _, ref := range refs {
		if _, err := svc.Pull(ctx, ref, images.PullOptions{MaxConcurrentDownloads: 2}); err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		unpacked, err := mustImage(t, e, ref).IsUnpacked(e.ctx, "overlayfs")
		if err != nil || !unpacked {
			t.Fatalf("%s not unpacked (err %v)", ref, err)
		}
	}

	// Two more at once, as a kubelet pulls: both download the shared base,
	// and one of them unpacks it.
	refs = pushSharedBase(t, host, "together")
	errs := make(chan error, len(refs))
	for _, ref := range refs {
		go func() {
			_, err := svc.Pull(ctx, ref, images.PullOptions{MaxConcurrentDownloads: 2})
			errs <- err
		}()
	}
	for range refs {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent pull: %v", err)
		}
	}
	for _, ref := range refs {
		unpacked, err := mustImage(t, e, ref).IsUnpacked(e.ctx, "overlayfs")
		if err != nil || !unpacked {
			t.Fatalf("%s not unpacked after concurrent pulls (err %v)", ref, err)
		}
	}
}

// pushSharedBase pushes an image of 4 new layers and one of those 4 and 3
// more, and returns their references.
func pushSharedBase(t *testing.T, host, name string) []string {
	t.Helper()
	seed := time.Now().UnixNano()
	var refs []string
	for _, layers := range []int{4, 7} {
		img, err := testimages.MultiLayer(layers, 64<<10, seed)
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/kctr/%s-%d:1", host, name, layers)
		if err := testimages.Push(context.Background(), img, ref); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	return refs
}
