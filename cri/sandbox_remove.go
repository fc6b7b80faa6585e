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
// pause container with its snapshot and the sandbox dirs. Unknown IDs
// succeed.
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
	ctr, err := r.client.LoadContainer(ctx, sb.meta.ID)
	if err == nil {
		err = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	}
	if err != nil && !errdefs.IsNotFound(err) {
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
