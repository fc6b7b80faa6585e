package cri

// Image volumes (the Kubernetes ImageVolume feature): a CRI Mount whose
// Image is set mounts that image's filesystem, read-only, into the
// container.
//
// Each such mount gets its own read-only view snapshot of the image, keyed
// by the container's ID and the mount's index in the config, mounted on the
// host at StateDir/image-volumes/<container>/<index>; the container
// bind-mounts it, or the mount's sub path inside it. A host mount (rather
// than the snapshot's mounts in the OCI spec) is what makes a sub path
// possible: a multi-layer view is an overlay, and only a mounted overlay
// has a merged tree to take a directory from.
//
// What outlives kcrid is in containerd: the container record holds a GC
// reference label per snapshot, so containerd keeps each view exactly as
// long as the record, and the record's config says which mounts are image
// volumes. The host mounts are redone from those at recovery (a reboot
// empties StateDir) and undone by RemoveContainer.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// imageVolumes is what CreateContainer needs from the image volumes of a
// container it creates.
type imageVolumes struct {
	// config is the container's config with ImageRef filled in on every
	// image mount, so ContainerStatus reports the image each one uses.
	config *runtimeapi.ContainerConfig
	// mounts are the OCI mounts, by index of the CRI mount in config.
	mounts map[int]specs.Mount
	// labels are the record's GC references to the view snapshots.
	labels map[string]string
}

// imageVolumesDir holds the host mounts of every container's image volumes.
func (r *runtimeService) imageVolumesDir() string {
	return filepath.Join(r.cfg.StateDir, "image-volumes")
}

// imageVolumeTarget is where the image volume at index is mounted on the host.
func (r *runtimeService) imageVolumeTarget(containerID string, index int) string {
	return filepath.Join(r.imageVolumesDir(), containerID, strconv.Itoa(index))
}

// imageVolumeSnapshotKey names the view snapshot of the image volume at index.
func imageVolumeSnapshotKey(containerID string, index int) string {
	return fmt.Sprintf("%s/image-volume/%d", containerID, index)
}

// imageVolumeIndexes are the indexes of cfg's image mounts.
func imageVolumeIndexes(cfg *runtimeapi.ContainerConfig) []int {
	var out []int
	for i, m := range cfg.GetMounts() {
		if m.GetImage() != nil {
			out = append(out, i)
		}
	}
	return out
}

// prepareImageVolumes makes and mounts the view snapshot of every image
// mount in cfg. The images must be present (the kubelet pulls them
// first). On error nothing is left behind. The caller holds a lease until
// the container record with the returned labels exists, and removes the
// volumes with removeImageVolumes if creating the container fails later.
func (r *runtimeService) prepareImageVolumes(ctx context.Context, containerID string, cfg *runtimeapi.ContainerConfig) (_ *imageVolumes, retErr error) {
	out := &imageVolumes{config: cfg, mounts: map[int]specs.Mount{}, labels: map[string]string{}}
	indexes := imageVolumeIndexes(cfg)
	if len(indexes) == 0 {
		return out, nil
	}
	out.config = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	defer func() {
		if retErr != nil {
			r.undoImageVolumes(ctx, containerID, out.config)
		}
	}()
	for _, i := range indexes {
		m := out.config.GetMounts()[i]
		ociMount, imageRef, err := r.prepareImageVolume(ctx, containerID, i, m)
		if err != nil {
			return nil, fmt.Errorf("%w: image volume %s (image %q): %w",
				crierrors.ErrImageVolumeMountFailed, m.GetContainerPath(), m.GetImage().GetImage(), err)
		}
		m.Image.ImageRef = imageRef
		out.mounts[i] = ociMount
		out.labels[fmt.Sprintf("containerd.io/gc.ref.snapshot.%s/image-volume-%d", r.images.images.Snapshotter(), i)] =
			imageVolumeSnapshotKey(containerID, i)
	}
	return out, nil
}

// undoImageVolumes removes the image volumes of a container whose
// creation failed; the failure reported is the creation's, so this one is
// only logged.
func (r *runtimeService) undoImageVolumes(ctx context.Context, containerID string, cfg *runtimeapi.ContainerConfig) {
	if err := r.removeImageVolumes(context.WithoutCancel(ctx), containerID, cfg); err != nil {
		log.G(ctx).WithError(err).WithField("id", containerID).Warn("undo image volumes")
	}
}

// withImageVolumeRefs adds the GC references to the image volumes'
// snapshots to the container record's labels.
func withImageVolumeRefs(v *imageVolumes) containerd.NewContainerOpts {
	return func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
		if len(v.labels) == 0 {
			return nil
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		maps.Copy(c.Labels, v.labels)
		return nil
	}
}

// prepareImageVolume mounts one image volume on the host; it returns the
// container's mount of it and the image's ID.
func (r *runtimeService) prepareImageVolume(ctx context.Context, containerID string, index int, m *runtimeapi.Mount) (specs.Mount, string, error) {
	dst := m.GetContainerPath()
	switch {
	case dst == "" || !filepath.IsAbs(dst):
		return specs.Mount{}, "", fmt.Errorf("container path %q must be absolute: %w", dst, errdefs.ErrInvalidArgument)
	case !m.GetReadonly():
		return specs.Mount{}, "", fmt.Errorf("an image volume must be read-only: %w", errdefs.ErrInvalidArgument)
	case m.GetHostPath() != "":
		return specs.Mount{}, "", fmt.Errorf("an image volume has no host path (got %q): %w", m.GetHostPath(), errdefs.ErrInvalidArgument)
	case m.GetImage().GetImage() == "":
		return specs.Mount{}, "", fmt.Errorf("no image given: %w", errdefs.ErrInvalidArgument)
	}
	if sub := m.GetImageSubPath(); sub != "" && !filepath.IsLocal(sub) {
		return specs.Mount{}, "", fmt.Errorf("sub path %q must be relative and stay inside the image: %w", sub, errdefs.ErrInvalidArgument)
	}
	// Never pulled here: the kubelet pulls the image before it creates the
	// container, so a missing image is NotFound.
	handle, img, err := r.images.ensure(ctx, m.GetImage().GetImage(), false)
	if err != nil {
		return specs.Mount{}, "", err
	}
	diffIDs := img.DiffIDs
	if len(diffIDs) == 0 {
		if diffIDs, err = handle.RootFS(ctx); err != nil {
			return specs.Mount{}, "", fmt.Errorf("layers of %s: %w", img.Name, err)
		}
	}
	snapshots := r.client.SnapshotService(r.images.images.Snapshotter())
	mounts, err := snapshots.View(ctx, imageVolumeSnapshotKey(containerID, index), identity.ChainID(diffIDs).String())
	if err != nil {
		return specs.Mount{}, "", fmt.Errorf("view snapshot of %s: %w", img.Name, err)
	}
	target := r.imageVolumeTarget(containerID, index)
	if err := mountImageVolume(mounts, target); err != nil {
		return specs.Mount{}, "", err
	}
	source := target
	if sub := m.GetImageSubPath(); sub != "" {
		if source, err = resolveImageSubPath(target, sub); err != nil {
			return specs.Mount{}, "", err
		}
	}
	return specs.Mount{
		Destination: filepath.Clean(dst),
		Source:      source,
		Type:        "bind",
		Options:     []string{"rbind", "rprivate", "ro"},
	}, img.ID.String(), nil
}

// mountImageVolume mounts a view snapshot at target, a new directory.
func mountImageVolume(mounts []mount.Mount, target string) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return fmt.Errorf("create image volume mount point: %w", err)
	}
	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mount image volume at %s: %w", target, err)
	}
	return nil
}

// resolveImageSubPath is the host path of the directory subPath names
// inside the image mounted at root. Symlinks are followed only while they
// stay inside the image (os.OpenInRoot); the result has none left, so
// runc, which resolves the source on the host, cannot be led out of it.
func resolveImageSubPath(root, subPath string) (string, error) {
	f, err := os.OpenInRoot(root, subPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("sub path %q does not exist in the image: %w", subPath, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return "", fmt.Errorf("sub path %q: %v: %w", subPath, err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("sub path %q: %w", subPath, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("sub path %q is not a directory in the image: %w", subPath, errdefs.ErrInvalidArgument)
	}
	resolved, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("sub path %q: resolve: %w", subPath, err)
	}
	if rel, err := filepath.Rel(root, resolved); err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("sub path %q resolves to %s, outside the image: %w", subPath, resolved, errdefs.ErrInvalidArgument)
	}
	return resolved, nil
}

// removeImageVolumes unmounts the image volumes of a container and removes
// their snapshots; what is already gone is skipped, so it can be retried.
func (r *runtimeService) removeImageVolumes(ctx context.Context, containerID string, cfg *runtimeapi.ContainerConfig) error {
	indexes := imageVolumeIndexes(cfg)
	if len(indexes) == 0 {
		return nil
	}
	var errs []error
	for _, i := range indexes {
		errs = append(errs, r.removeImageVolume(ctx, containerID, i))
	}
	if err := os.Remove(filepath.Join(r.imageVolumesDir(), containerID)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("remove image volume dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove image volumes of %s: %w", containerID, err)
	}
	return nil
}

func (r *runtimeService) removeImageVolume(ctx context.Context, containerID string, index int) error {
	target := r.imageVolumeTarget(containerID, index)
	// Detached: a process of the host that still has a file open there
	// must not keep the container from being removed.
	if err := mount.UnmountAll(target, unix.MNT_DETACH); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", target, err)
	}
	key := imageVolumeSnapshotKey(containerID, index)
	if err := r.client.SnapshotService(r.images.images.Snapshotter()).Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// restoreImageVolumes mounts again the image volumes of a container that
// is yet to start, when StateDir lost them (a reboot). Their snapshots are
// still there; the OCI spec already names the paths mounted here.
func (r *runtimeService) restoreImageVolumes(ctx context.Context, c *container) error {
	snapshots := r.client.SnapshotService(r.images.images.Snapshotter())
	for _, i := range imageVolumeIndexes(c.config) {
		target := r.imageVolumeTarget(c.meta.ID, i)
		mounted, err := isMountPoint(target)
		if err != nil {
			return fmt.Errorf("image volume %d of %s: %w", i, c.meta.ID, err)
		}
		if mounted {
			continue
		}
		mounts, err := snapshots.Mounts(ctx, imageVolumeSnapshotKey(c.meta.ID, i))
		if err != nil {
			return fmt.Errorf("image volume %d of %s: %w", i, c.meta.ID, err)
		}
		if err := mountImageVolume(mounts, target); err != nil {
			return fmt.Errorf("image volume %d of %s: %w", i, c.meta.ID, err)
		}
	}
	return nil
}

// isMountPoint reports whether something is mounted at path.
func isMountPoint(path string) (bool, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	info, err := mount.Lookup(resolved)
	if err != nil {
		return false, err
	}
	return info.Mountpoint == resolved, nil
}

// removeOrphanImageVolumes undoes the image volumes of containers that
// have no record (a crash in the middle of CreateContainer). It runs
// before kcrid serves, once every container is recovered.
func (r *runtimeService) removeOrphanImageVolumes(ctx context.Context) {
	entries, err := os.ReadDir(r.imageVolumesDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if _, err := r.containers.get(e.Name()); err == nil {
			continue
		}
		dir := filepath.Join(r.imageVolumesDir(), e.Name())
		volumes, _ := os.ReadDir(dir)
		var errs []error
		for _, v := range volumes {
			index, err := strconv.Atoi(v.Name())
			if err != nil {
				errs = append(errs, fmt.Errorf("unexpected entry %s", filepath.Join(dir, v.Name())))
				continue
			}
			errs = append(errs, r.removeImageVolume(ctx, e.Name(), index))
		}
		if err := os.Remove(dir); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			log.G(ctx).WithError(err).WithField("id", e.Name()).Warn("remove orphan image volumes")
		} else {
			log.G(ctx).WithField("id", e.Name()).Info("removed orphan image volumes")
		}
	}
}
