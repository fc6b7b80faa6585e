package testenv

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestContainerdConfigKeys(t *testing.T) {
	// Rendering only: no daemon, no root needed.
	for _, v := range []string{"1.6", "2.4"} {
		for _, cri := range []bool{false, true} {
			c := &Containerd{version: v, dir: "/tmp/kctr-ctrd-x", address: "/tmp/kctr-ctrd-x/containerd.sock", runc: "/usr/sbin/runc",
				opts: ContainerdOptions{EnableCRI: cri, SandboxImage: "127.0.0.1:5000/pause:3.9", HostsDir: "/h"}}
			out, err := c.config()
			if err != nil {
				t.Fatal(err)
			}
			s := string(out)
			want := []string{"oom_score = 0", "imports = []", "/tmp/kctr-ctrd-x/containerd.sock", "/tmp/kctr-ctrd-x/opt"}
			if v == "1.6" {
				want = append(want, "version = 2")
			} else {
				want = append(want, "version = 4", "socket_dir = '/tmp/kctr-ctrd-x/s'")
			}
			if cri {
				want = append(want, "restrict_oom_score_adj = true", "127.0.0.1:5000/pause:3.9", "Root = '/tmp/kctr-ctrd-x/runc'", "config_path = '/h'", "/usr/lib/cni")
			} else {
				want = append(want, "io.containerd.grpc.v1.cri")
			}
			for _, w := range want {
				if !strings.Contains(s, w) {
					t.Errorf("%s cri=%v: config lacks %q:\n%s", v, cri, w, s)
				}
			}
		}
	}
}

// TestContainerd starts each daemon, runs a real task from a tiny rootfs
// (busybox-static in a snapshot) and checks that Stop leaves no process,
// mount or directory behind.
func TestContainerd(t *testing.T) {
	RequireRoot(t)
	for _, v := range []string{"1.6", "2.4"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			c, err := StartContainerd(ctx, ContainerdOptions{Version: v})
			if errors.Is(err, ErrNotInstalled) {
				Require(t, false, "%v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Stop() }) // no-op after the Stop below
			dir, pid := c.Dir(), c.PID()

			if len(c.Address()) >= 108 || !strings.HasPrefix(c.Address(), dir+"/") {
				t.Errorf("address %q", c.Address())
			}
			cl, err := c.Client(ctx, "kctr-testenv")
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ver, err := cl.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Version() != v || !strings.HasPrefix(ver.Version, v+".") {
				t.Errorf("Version()=%q, daemon says %q, want %s.x", c.Version(), ver.Version, v)
			}
			t.Logf("containerd %s (pid %d) at %s", ver.Version, pid, c.Address())

			assertConfigAccepted(t, c)

			// CRI is off by default.
			ps, err := cl.IntrospectionService().Plugins(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps.Plugins {
				if strings.Contains(p.Type, "cri") || p.ID == "cri" || p.Type == "io.containerd.nri.v1" {
					t.Errorf("plugin %s.%s loaded, want it disabled", p.Type, p.ID)
				}
			}

			// Everything below must be undone by Stop: a lease, a snapshot
			// mounted by us under Dir, and a running task (shim + rootfs mount).
			// The lease keeps the snapshot from being garbage collected
			// before the container references it.
			lease, err := cl.LeasesService().Create(ctx, leases.WithRandomID(), leases.WithExpiration(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			sn := cl.SnapshotService("overlayfs")
			mounts, err := sn.Prepare(leases.WithLease(ctx, lease.ID), "testenv-rootfs", "")
			if err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "mnt")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := mount.All(mounts, target); err != nil {
				t.Fatal(err)
			}
			if busybox, err := os.Open("/bin/busybox"); err == nil {
				copyExecutable(t, busybox, filepath.Join(target, "busybox"))
				busybox.Close()
				startSleeper(ctx, t, c, cl, v)
			} else {
				t.Logf("no /bin/busybox (busybox-static): not running a task")
			}
			if m, _ := MountsUnder(dir); len(m) == 0 {
				t.Errorf("expected mounts under %s before Stop", dir)
			}

			if err := c.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("daemon pid %d still exists after Stop (kill 0: %v)", pid, err)
			}
			if m, err := MountsUnder(dir); err != nil || len(m) > 0 {
				t.Errorf("mounts left under %s: %v %v", dir, m, err)
			}
			if left := ProcessesReferencing(dir); len(left) > 0 {
				t.Errorf("processes left: %v", left)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists (stat: %v)", dir, err)
			}
			if err := c.Stop(); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

func copyExecutable(t *testing.T, src io.Reader, dst string) {
	t.Helper()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// startSleeper runs "busybox sleep" in a container on the prepared snapshot
// with the daemon's private runc root and a top-level cgroup that runc
// removes again on delete.
func startSleeper(ctx context.Context, t *testing.T, c *Containerd, cl *client.Client, v string) {
	t.Helper()
	id := "kctr-testenv-" + strings.ReplaceAll(v, ".", "") + "-" + filepath.Base(c.Dir())
	ctr, err := cl.NewContainer(ctx, id,
		client.WithSnapshotter("overlayfs"),
		client.WithSnapshot("testenv-rootfs"),
		client.WithRuntime("io.containerd.runc.v2", c.RuncOptions()),
		client.WithNewSpec(oci.WithProcessArgs("/busybox", "sleep", "600"), oci.WithCgroup("/"+id)),
	)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("new task: %v\n%s", err, c.LogTail(20))
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("start task: %v\n%s", err, c.LogTail(20))
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status != client.Running {
		t.Fatalf("task status %v, %v", st.Status, err)
	}
	if len(ProcessesReferencing(c.Dir())) < 2 { // daemon + shim
		t.Errorf("expected a shim referencing %s", c.Dir())
	}
	if v == "2.4" { // 2.x shim sockets live in our dir, not /run/containerd/s
		if ents, err := os.ReadDir(filepath.Join(c.Dir(), "s")); err != nil || len(ents) == 0 {
			t.Errorf("no shim socket in %s/s: %v", c.Dir(), err)
		}
	}
	// The shim appends the namespace to the runc root.
	if _, err := os.Stat(filepath.Join(c.RuncRoot(), "kctr-testenv", id)); err != nil {
		t.Errorf("runc state not in private root: %v", err)
	}
}

// assertConfigAccepted fails on log lines showing that containerd ignored
// or rewrote part of our config.
func assertConfigAccepted(t *testing.T, c *Containerd) {
	t.Helper()
	data, err := os.ReadFile(c.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, "unknown key") || strings.Contains(line, "Configuration migrated") ||
			strings.Contains(line, "level=fatal") {
			t.Errorf("containerd %s log: %s", c.Version(), line)
		}
	}
}
