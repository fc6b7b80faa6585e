package cri

import (
	"context"
	"fmt"
	"os"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox stops the pod if needed, removes its containers, the
// pause container (its rootfs kept for a next pod, see deletePauseContainer)
// and the sandbox dirs. Unknown IDs succeed.
func (r *runtimeService) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	for _, c := range r.containersOf(sb.meta.ID) {
		if err := r.removeContainer(ctx, c); err != nil {
			return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.meta.ID, err)
		}
	}
	if err := r.deletePauseContainer(ctx, sb); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: delete pause container: %w", sb.meta.ID, err)
	}
	if err := r.deleteSandboxRecord(ctx, sb.meta.ID); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.meta.ID, err)
	}
	if err := r.cfg.removeSandboxState(sb.meta.ID); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.meta.ID, err)
	}
	if err := os.RemoveAll(sb.meta.Dir); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.meta.ID, err)
	}
	r.sandboxes.remove(sb.meta.ID, sb.meta.Name)
	r.nri.removePodSandbox(ctx, sb)
	r.publishSandboxEvent(ctx, sb.meta.ID, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// deletePauseContainer deletes the pause container's record; its rootfs
// is kept for a next pod (sandbox_rootfs_pool.go), unless the pod had a
// user namespace of its own (a remapped rootfs fits no other pod).
func (r *runtimeService) deletePauseContainer(ctx context.Context, sb *sandbox) error {
	ctr, err := r.client.LoadContainer(ctx, sb.meta.ID)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	info, err := ctr.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return err
	}
	userns, err := r.podUserNamespace(sb.config)
	spare, keep := spareRootfs{}, false
	if err == nil && userns == nil && info.SnapshotKey != "" {
		spare, keep = r.pauseRootfs.claim(ctx, info.SnapshotKey)
	}
	if !keep {
		err = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := ctr.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	r.pauseRootfs.giveBack(spare)
	return nil
}
