package system

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	ctrimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/kctr/kctr/images"
)

// PruneOptions tunes Prune.
type PruneOptions struct {
	// AllImages removes every image no container uses; without it only
	// dangling images (records whose name is not an image reference) go.
	AllImages bool
	// KeepContainers leaves containers alone (`image prune`).
	KeepContainers bool
	// Snapshotter is where kctr unpacks images, for the space count.
	Snapshotter string
}

// PruneReport says what Prune removed.
type PruneReport struct {
	// Containers are the IDs of removed containers.
	Containers []string
	// Untagged are the image names removed; Deleted the image IDs left
	// with no name.
	Untagged []string
	Deleted  []digest.Digest
	// Reclaimed is the space freed in the namespace: content blobs,
	// committed snapshots and the removed containers' writable layers.
	// Blobs other namespaces share stay on disk and are counted anyway.
	Reclaimed int64
}

// ContainerRemover removes one container with everything kctr keeps for
// it (snapshot, logs), refusing a running one unless forced; kctr's
// containers.Manager is one.
type ContainerRemover interface {
	Remove(ctx context.Context, idOrName string, force bool) (string, error)
}

// criKindLabel marks containers and sandboxes a CRI server made; the
// kubelet owns those, so prune leaves them alone even when stopped.
const criKindLabel = "io.cri-containerd.kind"

// Prune removes the stopped containers of the namespace in ctx (no task,
// or a task that has exited) and then the images no container uses. It
// goes on past one failing object and returns what it did with the first
// error.
func Prune(ctx context.Context, client *containerd.Client, remover ContainerRemover, imageService *images.Service, opts PruneOptions) (*PruneReport, error) {
	if opts.Snapshotter == "" {
		opts.Snapshotter = imageService.Snapshotter()
	}
	report := &PruneReport{}
	before, err := usage(ctx, client, opts.Snapshotter)
	if err != nil {
		return nil, err
	}
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}

	list, err := client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: list containers: %w", err)
	}
	usedImages := map[string]bool{}
	var writable int64
	for _, c := range list {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			keep(fmt.Errorf("prune: container %s: %w", c.ID(), err))
			continue
		}
		if _, cri := info.Labels[criKindLabel]; cri || opts.KeepContainers {
			usedImages[info.Image] = true
			continue
		}
		stopped, err := isStopped(ctx, c)
		if err != nil {
			keep(err)
		}
		if !stopped || err != nil {
			usedImages[info.Image] = true
			continue
		}
		size := int64(0)
		if info.SnapshotKey != "" && info.Snapshotter != "" {
			if u, err := client.SnapshotService(info.Snapshotter).Usage(ctx, info.SnapshotKey); err == nil {
				size = u.Size
			}
		}
		if _, err := remover.Remove(ctx, c.ID(), false); err != nil && !errdefs.IsNotFound(err) {
			// FailedPrecondition: it was started since we looked.
			if !errdefs.IsFailedPrecondition(err) {
				keep(fmt.Errorf("prune: remove container %s: %w", c.ID(), err))
			}
			usedImages[info.Image] = true
			continue
		}
		writable += size
		report.Containers = append(report.Containers, c.ID())
	}

	all, err := imageService.List(ctx)
	if err != nil {
		keep(fmt.Errorf("prune: %w", err))
	}
	// An image ID is deleted once its last name goes.
	namesLeft := map[digest.Digest]int{}
	for _, img := range all {
		namesLeft[img.ID]++
	}
	for _, img := range all {
		if usedImages[img.Name] || (!opts.AllImages && !Dangling(img.Name)) {
			continue
		}
		if err := removeImageName(ctx, client, imageService, img.Name); err != nil {
			if !errdefs.IsFailedPrecondition(err) {
				keep(err)
			}
			continue
		}
		report.Untagged = append(report.Untagged, img.Name)
		if namesLeft[img.ID]--; namesLeft[img.ID] == 0 {
			report.Deleted = append(report.Deleted, img.ID)
		}
	}

	after, err := usage(ctx, client, opts.Snapshotter)
	if err != nil {
		keep(err)
	} else if before > after {
		report.Reclaimed = before - after
	}
	report.Reclaimed += writable
	return report, firstErr
}

// Dangling reports whether an image record's name is not an image
// reference, e.g. a bare digest left by an import: nothing can use it by
// name.
func Dangling(name string) bool {
	_, err := images.ParseReference(name)
	return err != nil
}

func isStopped(ctx context.Context, c containerd.Container) (bool, error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("prune: task of container %s: %w", c.ID(), err)
	}
	status, err := task.Status(ctx)
	if err != nil {
		return false, fmt.Errorf("prune: status of container %s: %w", c.ID(), err)
	}
	return status.Status == containerd.Stopped, nil
}

// usage adds up the namespace's content blobs and committed snapshots,
// whose sizes containerd keeps (active ones would need a walk of their
// directories).
func usage(ctx context.Context, client *containerd.Client, snapshotter string) (int64, error) {
	var total int64
	if err := client.ContentStore().Walk(ctx, func(info content.Info) error {
		total += info.Size
		return nil
	}); err != nil {
		return 0, fmt.Errorf("prune: list content: %w", err)
	}
	sn := client.SnapshotService(snapshotter)
	err := sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			return nil
		}
		if u, err := sn.Usage(ctx, info.Name); err == nil {
			total += u.Size
		}
		return nil
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("prune: list %s snapshots: %w", snapshotter, err)
	}
	return total, nil
}

// removeImageName removes one image name. A dangling name is not a
// reference the images service can look up, so it goes straight to
// containerd's image store.
func removeImageName(ctx context.Context, client *containerd.Client, imageService *images.Service, name string) error {
	if !Dangling(name) {
		_, err := imageService.Remove(ctx, name, images.RemoveOptions{})
		return err
	}
	if err := client.ImageService().Delete(ctx, name, ctrimages.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("prune: remove image %s: %w", name, err)
	}
	return nil
}
