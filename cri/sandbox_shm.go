package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxShmSize is the size of a pod's /dev/shm, as the kubelet's other
// runtimes give it (64 MiB).
const sandboxShmSize = 64 << 20

// sandboxShmDir is where a pod's /dev/shm tmpfs is mounted on the host. It
// is in the state dir: a mount does not outlive a reboot, and the sandbox
// dir under the root dir is removed with RemoveAll, which must not reach
// into a mounted tmpfs.
func (c Config) sandboxShmDir(id string) string {
	return filepath.Join(c.StateDir, "sandboxes", id, "shm")
}

// podShmSource is what a container's /dev/shm binds: the host's for a pod
// in the host IPC namespace, else the pod's own tmpfs, so that every
// container of a pod shares POSIX shared memory as it shares SysV IPC.
func (c Config) podShmSource(id string, cfg *runtimeapi.PodSandboxConfig) string {
	if hostIPC(cfg) {
		return "/dev/shm"
	}
	return c.sandboxShmDir(id)
}

func hostIPC(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE
}

// mountSandboxShm mounts the pod's /dev/shm tmpfs at dir.
func mountSandboxShm(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pod /dev/shm dir: %w", err)
	}
	data := fmt.Sprintf("mode=1777,size=%d", sandboxShmSize)
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, data); err != nil {
		_ = os.Remove(dir)
		return fmt.Errorf("mount pod /dev/shm at %s: %w", dir, err)
	}
	return nil
}

// unmountSandboxShm unmounts the pod's /dev/shm; nothing mounted is fine.
// Containers still holding it (they are stopped first) keep their own
// reference: the detach does not wait for them.
func unmountSandboxShm(dir string) error {
	if err := mount.UnmountAll(dir, unix.MNT_DETACH); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("unmount pod /dev/shm %s: %w", dir, err)
	}
	return nil
}

// removeSandboxState unmounts the pod's /dev/shm and removes its dir in
// the state dir.
func (c Config) removeSandboxState(id string) error {
	shm := c.sandboxShmDir(id)
	if err := unmountSandboxShm(shm); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Dir(shm))
}

// removeOrphanSandboxDirs unmounts and removes the dirs of pods that have
// no record (a RunPodSandbox cut short by a crash, a pause container
// deleted behind kcrid's back): their /dev/shm under the state dir and
// their files under the root dir. A pod with a record that failed to
// recover keeps them: its containers may be running on them. It runs at
// start, before kcrid serves.
func (r *runtimeService) removeOrphanSandboxDirs(ctx context.Context, recorded map[string]bool) {
	orphans := map[string]bool{}
	for _, parent := range []string{filepath.Join(r.cfg.StateDir, "sandboxes"), filepath.Join(r.cfg.RootDir, "sandboxes")} {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if !recorded[e.Name()] {
				orphans[e.Name()] = true
			}
		}
	}
	for id := range orphans {
		err := r.cfg.removeSandboxState(id)
		if err == nil {
			err = os.RemoveAll(r.cfg.sandboxDir(id))
		}
		if err != nil {
			log.G(ctx).WithError(err).WithField("sandbox", id).Warn("remove the dirs of an unknown pod")
		}
	}
}
