package images_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/diff"
	ctrimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/labels"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// whiteoutImage has three layers that remove, replace and hide what the
// ones below hold, plus the file kinds an applier must get right.
func whiteoutImage(t *testing.T) (base, middle, top *testimages.FS) {
	t.Helper()
	unique := []byte(fmt.Sprint(time.Now().UnixNano()))
	base = testimages.NewFS()
	base.File("/id", 0o644, unique)
	base.File("/keep", 0o644, []byte("v1\n"))
	base.File("/gone", 0o644, []byte("removed above\n"))
	base.File("/dir/a", 0o600, []byte("a"))
	base.File("/dir/b", 0o640, []byte("b"))
	base.File("/opaque/x", 0o644, []byte("hidden above"))
	base.Program("/bin/prog", []byte("#!/bin/sh\necho prog\n"), "/bin/link")
	base.Symlink("/sym", "keep")
	base.File("/suid", fs.ModeSetuid|0o755, []byte("suid"))
	base.File("/owned", 0o644, []byte("owned"))
	base.Chown("/owned", 1000, 1000)
	base.Dir("/scratch", fs.ModeSticky|0o777)
	base.Dir("/empty", 0o700)

	middle = testimages.NewFS()
	middle.File("/id", 0o644, append(unique, '1'))
	middle.File("/.wh.gone", 0o644, nil)
	middle.File("/opaque/.wh..wh..opq", 0o644, nil)
	middle.File("/opaque/y", 0o644, []byte("only y"))
	middle.File("/dir/c", 0o644, []byte("c"))
	middle.File("/keep", 0o644, []byte("v2\n"))

	top = testimages.NewFS()
	top.File("/id", 0o644, append(unique, '2'))
	top.File("/dir/.wh.a", 0o644, nil)
	top.File("/new", 0o644, []byte("new\n"))
	return base, middle, top
}

// refusingDiff fails every request, so a pull that succeeds with it
// applied all its layers in process.
type refusingDiff struct{}

func (refusingDiff) Apply(context.Context, ocispec.Descriptor, []mount.Mount, ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errors.New("the daemon's diff service was asked to apply a layer")
}

func (refusingDiff) Compare(context.Context, []mount.Mount, []mount.Mount, ...diff.Opt) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errors.New("compare not expected")
}

// Layers unpacked in process come out as containerd's own applier makes
// them: the same files, owners, modes and links, the same whiteouts and
// opaque dirs in each layer's dir, the same labels on the blobs.
func TestPullUnpacksInProcessAsContainerdDoes(t *testing.T) {
	e := newEnv(t)
	shares, err := images.SharesDaemonFilesystem(daemon.Address())
	if err != nil || !shares {
		t.Fatalf("SharesDaemonFilesystem(test daemon) = %v, %v; want true", shares, err)
	}
	capabilities, err := e.client.GetSnapshotterCapabilities(e.ctx, "overlayfs")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(capabilities, snapshots.RebaseCap) {
		t.Skipf("containerd %s applies layers side by side (overlayfs can rebase): pulls leave unpacking to it", daemon.DaemonVersion())
	}
	base, middle, top := whiteoutImage(t)
	img, err := testimages.NewImage(v1.Config{Cmd: []string{"sh"}}, mustLayers(t, base, middle, top)...)
	if err != nil {
		t.Fatal(err)
	}
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	ref := host + "/kctr/whiteouts:1"
	if err := testimages.Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}

	// In process first, with a diff service that refuses: the layers are
	// new to the content store, so all of them are kept and applied here.
	inProcessCtx := namespaces.WithNamespace(e.ctx, testenv.Namespace(t)+"-inproc")
	conn := e.client.Conn().(*grpc.ClientConn)
	refusing, err := containerd.NewWithConn(conn, containerd.WithServices(containerd.WithDiffService(refusingDiff{})))
	if err != nil {
		t.Fatal(err)
	}
	inProcess := images.NewService(refusing, images.ServiceOptions{UnpackInProcess: func() (bool, error) { return true, nil }})
	pulled, err := inProcess.Pull(inProcessCtx, ref, images.PullOptions{})
	if err != nil {
		t.Fatalf("pull unpacking in process: %v", err)
	}
	// Then by the daemon, which finds the blobs already in (containerd
	// shares them between namespaces) and applies each itself.
	daemonCtx := namespaces.WithNamespace(e.ctx, testenv.Namespace(t)+"-daemon")
	if _, err := images.NewService(e.client, images.ServiceOptions{}).Pull(daemonCtx, ref, images.PullOptions{}); err != nil {
		t.Fatalf("pull unpacking by the daemon: %v", err)
	}

	pulledImage := mustImage(t, env{ctx: inProcessCtx, client: e.client}, ref)
	manifest, err := ctrimages.Manifest(inProcessCtx, e.client.ContentStore(), pulledImage.Target(), platforms.Default())
	if err != nil {
		t.Fatal(err)
	}
	diffIDs, err := pulledImage.RootFS(inProcessCtx)
	if err != nil {
		t.Fatal(err)
	}
	chainID := identity.ChainID(diffIDs).String()
	inProcessTree, inProcessLayers := snapshotTrees(t, inProcessCtx, e.client, chainID)
	daemonTree, daemonLayers := snapshotTrees(t, daemonCtx, e.client, chainID)
	compareTrees(t, "image rootfs", inProcessTree, daemonTree)
	if len(inProcessLayers) != 3 || len(daemonLayers) != 3 {
		t.Fatalf("layer dirs: %d in process, %d by the daemon; want 3", len(inProcessLayers), len(daemonLayers))
	}
	for i := range inProcessLayers {
		compareTrees(t, fmt.Sprintf("layer %d dir", i), inProcessLayers[i], daemonLayers[i])
	}
	if !strings.Contains(inProcessLayers[1]["/gone"], "char 0:0") || !strings.Contains(inProcessLayers[1]["/opaque"], "opaque=y") {
		t.Errorf("middle layer dir lacks its whiteout or opaque dir: %v", inProcessLayers[1])
	}

	for _, layer := range manifest.Layers {
		inProcessInfo, err := e.client.ContentStore().Info(inProcessCtx, layer.Digest)
		if err != nil {
			t.Fatal(err)
		}
		daemonInfo, err := e.client.ContentStore().Info(daemonCtx, layer.Digest)
		if err != nil {
			t.Fatal(err)
		}
		for key, value := range daemonInfo.Labels {
			if (key == labels.LabelUncompressed || strings.HasPrefix(key, labels.LabelDistributionSource)) && inProcessInfo.Labels[key] != value {
				t.Errorf("layer %s label %s = %q in process, %q by the daemon", layer.Digest, key, inProcessInfo.Labels[key], value)
			}
		}
	}
	if pulled.Name != ref {
		t.Errorf("pulled %s, want %s", pulled.Name, ref)
	}
}

func mustLayers(t *testing.T, trees ...*testimages.FS) []v1.Layer {
	t.Helper()
	var out []v1.Layer
	for _, tree := range trees {
		l, err := tree.Layer()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// snapshotTrees describes the merged view of the snapshot chainID and
// each of its layers' own dirs, bottom first.
func snapshotTrees(t *testing.T, ctx context.Context, client *containerd.Client, chainID string) (map[string]string, []map[string]string) {
	t.Helper()
	sn := client.SnapshotService("overlayfs")
	key := fmt.Sprintf("compare-%d", time.Now().UnixNano())
	mounts, err := sn.View(ctx, key, chainID)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Remove(context.WithoutCancel(ctx), key)
	var merged map[string]string
	if err := mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
		merged = describeTree(t, root)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var layerDirs []map[string]string
	for _, o := range mounts[0].Options {
		if lower, ok := strings.CutPrefix(o, "lowerdir="); ok {
			dirs := strings.Split(lower, ":")
			for i := len(dirs) - 1; i >= 0; i-- {
				layerDirs = append(layerDirs, describeTree(t, dirs[i]))
			}
		}
	}
	return merged, layerDirs
}

// describeTree maps every path under root to what an applier decides:
// type, mode, owner, content, link target, hard link group, overlay xattrs.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256 %x", sha256.Sum256(data))
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case syscall.S_IFCHR:
			desc += fmt.Sprintf(" char %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if v, err := getXattr(p, "trusted.overlay.opaque"); err == nil {
			desc += " opaque=" + v
		}
		if rel != "/" {
			tree[rel] = desc
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range inodes {
		sort.Strings(group)
		for _, p := range group {
			tree[p] += " linked with " + strings.Join(group, ",")
		}
	}
	return tree
}

func getXattr(path, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func compareTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s missing in process (daemon: %s)", what, p, w)
		} else if g != w {
			t.Errorf("%s: %s is %s in process, %s by the daemon", what, p, g, w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s only in process: %s", what, p, g)
		}
	}
}
