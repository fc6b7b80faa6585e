package cri_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/opencontainers/image-spec/identity"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/cri"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// volumeImage is busybox plus a layer with a tree to mount parts of: its
// view is an overlay of two layers, where busybox alone is a single bind.
const volumeImageRepo = "/kcrid/volume:1"

func volumeImageFS() *testimages.FS {
	f := testimages.NewFS()
	f.Dir("/data", 0o755)
	f.File("/data/hello", 0o644, []byte("hello from the image\n"))
	f.Dir("/data/sub", 0o755)
	f.File("/data/sub/marker", 0o644, []byte("sub\n"))
	f.Symlink("/data/link", "sub")
	f.Symlink("/data/abs", "/etc")
	f.Symlink("/data/out", "../../..")
	return f
}

// imageVolumeEnv is a kcrid whose hosts dir adds a registry of this test's
// own (serving volumeImage) to the shared mirror.
func imageVolumeEnv(t *testing.T) (e *env, volumeImage string) {
	t.Helper()
	testenv.Require(t, setupErr == nil, "setup: %v", setupErr)
	busybox, err := testimages.NewBuilder("").Busybox()
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimages.AppendFS(busybox, volumeImageFS())
	if err != nil {
		t.Fatal(err)
	}
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	volumeImage = host + volumeImageRepo
	if err := testimages.Push(context.Background(), img, volumeImage); err != nil {
		t.Fatal(err)
	}
	hostsDir := t.TempDir()
	mirror, err := os.ReadFile(filepath.Join(shared.hostsDir, "_default", "hosts.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(hostsDir, "_default", "hosts.toml"), string(mirror)); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WritePlainHTTPHost(hostsDir, host); err != nil {
		t.Fatal(err)
	}
	return newEnv(t, func(c *cri.Config) { c.HostsDir = hostsDir }), volumeImage
}

func imageMount(path, image, subPath string) *runtimeapi.Mount {
	return &runtimeapi.Mount{
		ContainerPath: path,
		Readonly:      true,
		Image:         &runtimeapi.ImageSpec{Image: image},
		ImageSubPath:  subPath,
	}
}

// imageVolumeLeftovers lists what image volumes leave on the host and in
// containerd: mounts and dirs under StateDir, view snapshots.
func imageVolumeLeftovers(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	dir := filepath.Join(e.cfg.StateDir, "image-volumes")
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, dir+"/") {
			out = append(out, "mount: "+line)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		out = append(out, "dir: "+en.Name())
	}
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	err = client.SnapshotService("overlayfs").Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.Contains(info.Name, "/image-volume/") {
			out = append(out, "snapshot: "+info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImageVolumes(t *testing.T) {
	e, volumeImage := imageVolumeEnv(t)
	volumeRef, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: volumeImage}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	busyboxRef, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: busyboxImage}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	podCfg := hostNetworkPod(t, "imgvol")
	pod := e.runPod(podCfg)

	t.Run("rejected", func(t *testing.T) {
		writable := imageMount("/mnt/v", volumeRef, "")
		writable.Readonly = false
		withHostPath := imageMount("/mnt/v", volumeRef, "")
		withHostPath.HostPath = t.TempDir()
		for _, tc := range []struct {
			name  string
			mount *runtimeapi.Mount
			code  codes.Code
		}{
			{"writable", writable, codes.InvalidArgument},
			{"host path too", withHostPath, codes.InvalidArgument},
			{"image not pulled", imageMount("/mnt/v", "docker.io/library/kcrid-none:1", ""), codes.NotFound},
			{"relative container path", imageMount("mnt/v", volumeRef, ""), codes.InvalidArgument},
			{"missing sub path", imageMount("/mnt/v", volumeRef, "data/missing"), codes.InvalidArgument},
			{"sub path is a file", imageMount("/mnt/v", volumeRef, "data/hello"), codes.InvalidArgument},
			{"sub path with ..", imageMount("/mnt/v", volumeRef, "data/../../etc"), codes.InvalidArgument},
			{"absolute sub path", imageMount("/mnt/v", volumeRef, "/etc"), codes.InvalidArgument},
			{"sub path through an absolute symlink", imageMount("/mnt/v", volumeRef, "data/abs"), codes.InvalidArgument},
			{"sub path through a symlink out of the image", imageMount("/mnt/v", volumeRef, "data/out"), codes.InvalidArgument},
		} {
			cfg := containerConfig("rejected", "sleep", "100")
			// A good volume first, so a failure must undo it too.
			cfg.Mounts = []*runtimeapi.Mount{imageMount("/mnt/good", busyboxRef, ""), tc.mount}
			_, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg)
			if status.Code(err) != tc.code {
				t.Errorf("%s: CreateContainer = %v, want code %s", tc.name, err, tc.code)
			}
			if left := imageVolumeLeftovers(t, e); len(left) > 0 {
				t.Errorf("%s: a failed create left %v", tc.name, left)
			}
		}
	})

	cfg := containerConfig("volumes", "sleep", "1000")
	cfg.Mounts = []*runtimeapi.Mount{
		imageMount("/mnt/whole", volumeRef, ""),
		imageMount("/mnt/sub", volumeRef, "data/link"),
		imageMount("/mnt/busybox", busyboxRef, ""),
	}
	cfg.Mounts[0].Image.UserSpecifiedImage = volumeImage
	ctr := e.startContainer(pod, podCfg, cfg)
	exec := func(cmd ...string) (string, error) {
		stdout, stderr, err := e.rs.ExecSync(e.ctx, ctr, cmd, 10*time.Second)
		return string(stdout) + string(stderr), err
	}
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"cat", "/mnt/whole/data/hello"}, "hello from the image\n"},
		{[]string{"ls", "/mnt/sub"}, "marker\n"},
		// Binaries in an image volume run (no noexec).
		{[]string{"/mnt/busybox/bin/cat", "/mnt/sub/marker"}, "sub\n"},
	} {
		if out, err := exec(tc.cmd...); err != nil || out != tc.want {
			t.Errorf("%v = %q, %v; want %q", tc.cmd, out, err, tc.want)
		}
	}
	for _, path := range []string{"/mnt/whole/new", "/mnt/whole/data/hello", "/mnt/sub/new", "/mnt/busybox/new"} {
		if out, err := exec("touch", path); err == nil {
			t.Errorf("touch %s in a read-only image volume succeeded: %s", path, out)
		}
	}

	st, err := e.rs.ContainerStatus(e.ctx, ctr, false)
	if err != nil {
		t.Fatal(err)
	}
	wantRefs := map[string]string{"/mnt/whole": volumeRef, "/mnt/sub": volumeRef, "/mnt/busybox": busyboxRef}
	for _, m := range st.Status.Mounts {
		if want, ok := wantRefs[m.ContainerPath]; ok {
			if m.GetImage().GetImageRef() != want || !m.Readonly {
				t.Errorf("status of mount %s: image %v readonly %v; want image ref %s", m.ContainerPath, m.GetImage(), m.Readonly, want)
			}
			delete(wantRefs, m.ContainerPath)
		}
	}
	if len(wantRefs) > 0 {
		t.Errorf("status lacks the mounts %v: %v", wantRefs, st.Status.Mounts)
	}

	// The snapshots belong to the container record: a garbage collection
	// with no lease left keeps them.
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// The control: a view only a lease held, collected by the same GC.
	lease, err := client.LeasesService().Create(e.ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	img, err := client.GetImage(e.ctx, volumeImage)
	if err != nil {
		t.Fatal(err)
	}
	diffIDs, err := img.RootFS(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	const controlKey = "control/image-volume/0"
	if _, err := client.SnapshotService("overlayfs").View(leases.WithLease(e.ctx, lease.ID), controlKey, identity.ChainID(diffIDs).String()); err != nil {
		t.Fatal(err)
	}
	if err := client.LeasesService().Delete(e.ctx, lease, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SnapshotService("overlayfs").Stat(e.ctx, controlKey); err == nil {
		t.Fatal("the garbage collection did not run: a view no one refers to survived it")
	}
	if out, err := exec("cat", "/mnt/whole/data/hello"); err != nil || out != "hello from the image\n" {
		t.Errorf("after a GC: %q %v", out, err)
	}
	snapshotsOf := func(id string) int {
		n := 0
		for _, l := range imageVolumeLeftovers(t, e) {
			if strings.HasPrefix(l, "snapshot: "+id+"/") {
				n++
			}
		}
		return n
	}
	if n := snapshotsOf(ctr); n != 3 {
		t.Errorf("%d view snapshots survive a GC, want 3", n)
	}

	if err := e.rs.StopContainer(e.ctx, ctr, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemoveContainer(e.ctx, ctr); err != nil {
		t.Fatal(err)
	}
	if left := imageVolumeLeftovers(t, e); len(left) > 0 {
		t.Errorf("RemoveContainer left %v", left)
	}

	// RemovePodSandbox removes a container's image volumes with it.
	e.startContainer(pod, podCfg, cfg)
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if left := imageVolumeLeftovers(t, e); len(left) > 0 {
		t.Errorf("RemovePodSandbox left %v", left)
	}
}

// TestImageVolumesRecovery: a created container's image volumes are
// mounted again when a reboot lost them, and those of a create that
// crashed before its record existed are removed, when kcrid starts.
func TestImageVolumesRecovery(t *testing.T) {
	e, volumeImage := imageVolumeEnv(t)
	volumeRef, err := e.is.PullImage(e.ctx, &runtimeapi.ImageSpec{Image: volumeImage}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.pullBusybox()
	podCfg := hostNetworkPod(t, "imgvol-restart")
	pod := e.runPod(podCfg)
	cfg := containerConfig("created", "sleep", "1000")
	cfg.Mounts = []*runtimeapi.Mount{imageMount("/mnt/sub", volumeRef, "data/sub")}
	ctr, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg)
	if err != nil {
		t.Fatal(err)
	}

	e.stop()
	// A reboot: the host mount is gone.
	target := filepath.Join(e.cfg.StateDir, "image-volumes", ctr, "0")
	if err := mount.UnmountAll(target, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	// A crash in CreateContainer: a mounted view without a record.
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	img, err := client.GetImage(e.ctx, volumeImage)
	if err != nil {
		t.Fatal(err)
	}
	diffIDs, err := img.RootFS(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	const orphanID = "0123456789abcdef"
	orphanKey := orphanID + "/image-volume/0"
	orphanTarget := filepath.Join(e.cfg.StateDir, "image-volumes", orphanID, "0")
	mounts, err := client.SnapshotService("overlayfs").View(e.ctx, orphanKey, identity.ChainID(diffIDs).String())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(orphanTarget, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, orphanTarget); err != nil {
		t.Fatal(err)
	}
	e.start()

	for _, l := range imageVolumeLeftovers(t, e) {
		if strings.Contains(l, orphanID) {
			t.Errorf("orphan image volume survived the restart: %s", l)
		}
	}
	if err := e.rs.StartContainer(e.ctx, ctr); err != nil {
		t.Fatalf("start the created container after the restart: %v", err)
	}
	if out, _, err := e.rs.ExecSync(e.ctx, ctr, []string{"cat", "/mnt/sub/marker"}, 10*time.Second); err != nil || string(out) != "sub\n" {
		t.Errorf("image volume after the restart: %q %v", out, err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if left := imageVolumeLeftovers(t, e); len(left) > 0 {
		t.Errorf("RemovePodSandbox left %v", left)
	}
}
