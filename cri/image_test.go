package cri_test

import (
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestImageService(t *testing.T) {
	e := newEnv(t)
	ref, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, "sha256:") {
		t.Fatalf("image ref %q is not an image ID", ref)
	}
	digestRef := ""
	if st, err := e.is.ImageStatus(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}, false); err == nil && st.Image != nil && len(st.Image.RepoDigests) > 0 {
		digestRef = st.Image.RepoDigests[0]
	}
	for _, name := range []string{busyboxImage, "busybox:1.36", ref, ref[len("sha256:"):][:12], digestRef} {
		st, err := e.is.ImageStatus(e.ctx, &runtimeapi.ImageSpec{Image: name}, false)
		if err != nil || st.Image == nil {
			t.Fatalf("ImageStatus(%s): %v %v", name, st, err)
		}
		img := st.Image
		if img.Id != ref || len(img.RepoTags) != 1 || img.RepoTags[0] != busyboxImage || img.Size == 0 ||
			len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], "docker.io/library/busybox@sha256:") {
			t.Errorf("ImageStatus(%s) = %v", name, img)
		}
	}
	if st, err := e.is.ImageStatus(e.ctx, &runtimeapi.ImageSpec{Image: "docker.io/library/kcrid-none:1"}, false); err != nil || st.Image != nil {
		t.Errorf("status of a missing image: %v %v", st, err)
	}

	// The image's USER is reported and used.
	if _, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: userImage}, nil, nil); err != nil {
		t.Fatal(err)
	}
	st, err := e.is.ImageStatus(e.ctx, &runtimeapi.ImageSpec{Image: userImage}, false)
	if err != nil || st.Image.GetUid().GetValue() != 1002 {
		t.Errorf("uid of %s: %v %v", userImage, st, err)
	}
	podCfg := hostNetworkPod(t, "img")
	pod := e.runPod(podCfg)
	cfg := containerConfig("user", "sleep", "100")
	cfg.Image.Image = userImage
	ctr := e.startContainer(pod, podCfg, cfg)
	if out, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"id", "-u"}, 10*time.Second); err != nil || strings.TrimSpace(string(out)) != "1002" {
		t.Errorf("uid in container of %s: %q %v", userImage, out, err)
	}
	// As the kubelet does it: the image by ID, the user's name aside.
	byID := containerConfig("by-id", "sleep", "100")
	byID.Image = &runtimeapi.ImageSpec{Image: ref, UserSpecifiedImage: "busybox:1.36"}
	idCtr := e.startContainer(pod, podCfg, byID)
	if st, err := e.rs.ContainerStatus(e.ctx, idCtr, false); err != nil || st.Status.Image.GetImage() != busyboxImage || st.Status.ImageId != ref {
		t.Errorf("container created by image ID: %v %v", st.GetStatus(), err)
	}

	list, err := e.is.ListImages(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned := map[string]bool{}
	for _, img := range list {
		for _, tag := range img.RepoTags {
			pinned[tag] = img.Pinned
		}
	}
	if p, ok := pinned[pauseImage]; !ok || !p {
		t.Errorf("pause image listed %v, pinned %v", ok, p)
	}
	if p, ok := pinned[busyboxImage]; !ok || p {
		t.Errorf("busybox listed %v, pinned %v", ok, p)
	}
	filtered, err := e.is.ListImages(e.ctx, &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: busyboxImage}})
	if err != nil || len(filtered) != 1 || filtered[0].Id != ref {
		t.Errorf("filtered list: %v %v", filtered, err)
	}

	fs, err := e.is.ImageFsInfo(e.ctx)
	if err != nil || len(fs.ImageFilesystems) == 0 || fs.ImageFilesystems[0].UsedBytes.GetValue() == 0 {
		t.Errorf("ImageFsInfo: %v %v", fs, err)
	}

	if err := e.is.RemoveImage(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}); err != nil {
		t.Fatal(err)
	}
	if st, err := e.is.ImageStatus(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}, false); err != nil || st.Image != nil {
		t.Errorf("status after remove: %v %v", st, err)
	}
	if err := e.is.RemoveImage(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}
