package cri

import (
	"context"
	"fmt"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// creationLeaseID names the lease that keeps containerd's garbage
// collector off a container's rootfs snapshot between its Prepare and the
// container record that refers to it.
const creationLeaseID = "kcrid-creations"

// creationLease is one lease for every container kcrid makes, instead of
// the lease containerd's client creates and deletes around each
// NewContainer: those are two metadata writes (each a disk sync) on the
// path of every RunPodSandbox and CreateContainer. Once the record exists
// the lease lets go of the snapshot, off that path.
//
// A kcrid that dies between a Prepare and its record leaves the snapshot
// in the lease; the next kcrid replaces the lease, and the collector takes
// the orphan.
type creationLease struct {
	leases      leases.Manager
	snapshotter string
	releases    sync.WaitGroup
}

// newCreationLease replaces the previous kcrid's lease (at start nothing
// is being created) with an empty one.
func newCreationLease(ctx context.Context, client *containerd.Client, snapshotter string) (*creationLease, error) {
	manager := client.LeasesService()
	if err := manager.Delete(ctx, leases.Lease{ID: creationLeaseID}); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("replace lease %s: %w", creationLeaseID, err)
	}
	if _, err := manager.Create(ctx, leases.WithID(creationLeaseID),
		leases.WithLabel("kcrid.io/purpose", "rootfs snapshots of containers being created")); err != nil {
		return nil, fmt.Errorf("create lease %s: %w", creationLeaseID, err)
	}
	return &creationLease{leases: manager, snapshotter: snapshotter}, nil
}

// context makes containerd's client join the lease instead of making one.
func (l *creationLease) context(ctx context.Context) context.Context {
	return leases.WithLease(ctx, creationLeaseID)
}

// release lets go of a container's rootfs snapshot (named by the container
// ID) in the background: its record holds it now, or it was removed.
func (l *creationLease) release(ctx context.Context, snapshotKey string) {
	ctx = context.WithoutCancel(ctx)
	l.releases.Add(1)
	go func() {
		defer l.releases.Done()
		resource := leases.Resource{ID: snapshotKey, Type: "snapshots/" + l.snapshotter}
		if err := l.leases.DeleteResource(ctx, leases.Lease{ID: creationLeaseID}, resource); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("snapshot", snapshotKey).Debug("release rootfs snapshot from the creation lease")
		}
	}()
}

// close waits for the releases in flight and deletes the lease: a kcrid
// that stopped leaves nothing of it behind.
func (l *creationLease) close(ctx context.Context) {
	l.releases.Wait()
	if err := l.leases.Delete(ctx, leases.Lease{ID: creationLeaseID}); err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).Warn("delete the creation lease")
	}
}
