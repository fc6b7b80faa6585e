package cri

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	sandboxstore "github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
)

// Sandbox records (containerd 2.x): a pod gets a record in containerd's
// sandbox store under its ID, the pause container's, and its containers
// name it as their sandbox. containerd then creates their tasks on the
// shim the pause task already runs on (the runc shim groups a pod's
// containers anyway) instead of running the shim binary again for each to
// learn that shim's address, which is most of the difference between a
// task create in a new pod and one in a running pod. containerd 1.x has no
// sandbox store; there every task create runs the shim binary.

const (
	// sandboxerName marks kcrid's records in containerd's sandbox store.
	sandboxerName = "kcrid"
	labelRecordOf = "io.kcrid/sandbox"
)

// probeSandboxRecords reports whether containerd keeps sandbox records.
func probeSandboxRecords(ctx context.Context, client *containerd.Client) bool {
	_, err := client.SandboxStore().List(ctx, fmt.Sprintf("labels.%q==probe", labelRecordOf))
	if err != nil && !errdefs.IsNotImplemented(err) {
		log.G(ctx).WithError(err).Info("containerd's sandbox store does not answer; every task create runs the shim binary")
	}
	return err == nil
}

// createSandboxRecord records pod id in containerd's sandbox store.
func (r *runtimeService) createSandboxRecord(ctx context.Context, id string) error {
	_, err := r.client.SandboxStore().Create(ctx, sandboxstore.Sandbox{
		ID:        id,
		Labels:    map[string]string{labelRecordOf: "pod"},
		Runtime:   sandboxstore.RuntimeOpts{Name: runcRuntime},
		Sandboxer: sandboxerName,
	})
	if err != nil {
		return fmt.Errorf("create sandbox record: %w", err)
	}
	return nil
}

// deleteSandboxRecord removes pod id's record; none is fine.
func (r *runtimeService) deleteSandboxRecord(ctx context.Context, id string) error {
	if !r.sandboxRecords {
		return nil
	}
	if err := r.client.SandboxStore().Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete sandbox record: %w", err)
	}
	return nil
}

// removeOrphanSandboxRecords deletes kcrid's records of pods it does not
// know (a RunPodSandbox cut short by a crash); called at start, once the
// index is rebuilt.
func (r *runtimeService) removeOrphanSandboxRecords(ctx context.Context) {
	if !r.sandboxRecords {
		return
	}
	records, err := r.client.SandboxStore().List(ctx, fmt.Sprintf("labels.%q", labelRecordOf))
	if err != nil {
		log.G(ctx).WithError(err).Warn("list sandbox records")
		return
	}
	for _, rec := range records {
		if _, err := r.sandboxes.get(rec.ID); err == nil {
			continue
		}
		if err := r.deleteSandboxRecord(ctx, rec.ID); err != nil {
			log.G(ctx).WithError(err).WithField("sandbox", rec.ID).Warn("remove orphan sandbox record")
		}
	}
}

// withSandboxRecord names the pod's sandbox record on a container of it,
// if the pod has one.
func withSandboxRecord(pod sandboxMeta) containerd.NewContainerOpts {
	if !pod.Record {
		return func(context.Context, *containerd.Client, *containers.Container) error { return nil }
	}
	return containerd.WithSandbox(pod.ID)
}
