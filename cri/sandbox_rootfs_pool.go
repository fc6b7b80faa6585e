package cri

import (
	"context"
	"fmt"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// The pause container's rootfs is never written to: the pause process
// writes nothing, and no pod file is mounted into it. So the rootfs
// snapshot of a removed pod's pause container is kept for the next pod,
// which then starts without a Prepare (two metadata writes, each with a
// disk sync, on the path of every RunPodSandbox).
//
// A kept snapshot carries labelSpareRootfs and containerd's gc.root label,
// both set before its first pod's pause container is deleted, and keeps
// them while a pod uses it:
// the label finds the spares again after a restart (those no pod's record
// names), gc.root keeps containerd's GC off them between two pods.

const (
	labelSpareRootfs = "io.kcrid/pause-rootfs"
	labelGCRoot      = "containerd.io/gc.root"
	// maxSpareRootfs bounds the kept snapshots: enough for pods that come
	// and go a few at a time, and little disk (each is an empty upper dir).
	maxSpareRootfs = 8
)

type spareRootfs struct {
	key    string
	parent string // chain ID of the sandbox image's layers
	mounts []mount.Mount
}

type pauseRootfsPool struct {
	snapshotter string
	client      *containerd.Client

	mu     sync.Mutex
	spares []spareRootfs
}

// loadPauseRootfsPool finds the spares left by the previous kcrid: labelled
// snapshots that no recovered pod uses.
func loadPauseRootfsPool(ctx context.Context, client *containerd.Client, snapshotter string, inUse map[string]bool) *pauseRootfsPool {
	p := &pauseRootfsPool{snapshotter: snapshotter, client: client}
	sn := client.SnapshotService(snapshotter)
	var found []spareRootfs
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive && !inUse[info.Name] {
			found = append(found, spareRootfs{key: info.Name, parent: info.Parent})
		}
		return nil
	}, fmt.Sprintf("labels.%q", labelSpareRootfs))
	if err != nil {
		log.G(ctx).WithError(err).Warn("look for spare pause rootfs snapshots")
		return p
	}
	for _, s := range found {
		if len(p.spares) >= maxSpareRootfs {
			p.discard(ctx, s.key)
			continue
		}
		if s.mounts, err = sn.Mounts(ctx, s.key); err != nil {
			p.discard(ctx, s.key)
			continue
		}
		p.spares = append(p.spares, s)
	}
	return p
}

// take returns a spare on the given parent, if there is one.
func (p *pauseRootfsPool) take(parent string) (spareRootfs, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.spares {
		if s.parent == parent {
			p.spares = append(p.spares[:i], p.spares[i+1:]...)
			return s, true
		}
	}
	return spareRootfs{}, false
}

// giveBack returns a spare that take handed out but no pod came to use.
func (p *pauseRootfsPool) giveBack(s spareRootfs) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spares = append(p.spares, s)
}

// claim marks the rootfs snapshot of a pod's pause container as a spare,
// ahead of the container's delete: once that record is gone, nothing but
// the gc.root label keeps containerd's GC (which may run at any mutation)
// off the snapshot. It reports false when the pool is full or the
// snapshot cannot be kept; the caller then deletes it with the container.
func (p *pauseRootfsPool) claim(ctx context.Context, key string) (spareRootfs, bool) {
	p.mu.Lock()
	full := len(p.spares) >= maxSpareRootfs
	p.mu.Unlock()
	if full {
		return spareRootfs{}, false
	}
	sn := p.client.SnapshotService(p.snapshotter)
	info, err := sn.Stat(ctx, key)
	if err == nil && info.Labels[labelSpareRootfs] == "" {
		info.Labels = map[string]string{labelSpareRootfs: "spare", labelGCRoot: "kcrid"}
		_, err = sn.Update(ctx, info, "labels."+labelSpareRootfs, "labels."+labelGCRoot)
	}
	var mounts []mount.Mount
	if err == nil {
		mounts, err = sn.Mounts(ctx, key)
	}
	if err != nil {
		log.G(ctx).WithError(err).WithField("snapshot", key).Debug("keep a pause rootfs; removing it")
		return spareRootfs{}, false
	}
	return spareRootfs{key: key, parent: info.Parent, mounts: mounts}, true
}

func (p *pauseRootfsPool) discard(ctx context.Context, key string) {
	if err := p.client.SnapshotService(p.snapshotter).Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("snapshot", key).Warn("remove a pause rootfs")
	}
}

// withSpareRootfs makes a spare the new pause container's rootfs.
func withSpareRootfs(snapshotter string, s spareRootfs, image string) containerd.NewContainerOpts {
	return func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
		c.Snapshotter = snapshotter
		c.SnapshotKey = s.key
		c.Image = image
		return nil
	}
}
