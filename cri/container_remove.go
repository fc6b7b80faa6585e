package cri

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveContainer kills a running container and deletes its record and
// snapshot. The log file stays (it belongs to the kubelet). Unknown IDs
// succeed.
func (r *runtimeService) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (r *runtimeService) removeContainer(ctx context.Context, c *container) error {
	c.mu.Lock()
	c.status.Removing = true
	c.mu.Unlock()
	if err := r.deleteContainer(ctx, c); err != nil {
		c.mu.Lock()
		c.status.Removing = false
		c.mu.Unlock()
		return fmt.Errorf("remove container %s: %w", c.meta.ID, err)
	}
	r.removeContainerIO(c)
	r.containers.remove(c.meta.ID, c.meta.Name)
	r.nri.removeContainer(ctx, c)
	r.publishContainerEvent(ctx, c.meta.ID, c.meta.SandboxID, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}

// deleteContainer kills what runs and deletes the record and snapshot.
func (r *runtimeService) deleteContainer(ctx context.Context, c *container) error {
	if err := r.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	ctr, task, err := r.loadTask(ctx, c.meta.ID)
	if err == nil && task != nil {
		// Stopped above; the event loop may be deleting it right now.
		err = deleteExitedTask(ctx, task)
	}
	if err == nil || errdefs.IsNotFound(err) {
		// Before the record goes, so that a failure here can be retried.
		if verr := r.removeImageVolumes(ctx, c.meta.ID, c.config); verr != nil {
			return verr
		}
	}
	if err == nil {
		err = ctr.Delete(ctx, containerd.WithSnapshotCleanup)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
