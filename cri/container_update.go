package cri

import (
	"context"
	"fmt"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources changes cgroup limits: in the stored spec (so a
// restart keeps them) and, when running, in the live cgroup.
func (r *runtimeService) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	res := req.GetLinux()
	if res == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if res, err = r.nri.updateContainer(ctx, c, res); err != nil { // before c.op: plugins may update c themselves
		return nil, fmt.Errorf("update container %s: %w", c.meta.ID, err)
	}
	c.op.Lock()
	defer c.op.Unlock()
	ctr, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil {
		return nil, err
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("update container %s: %w", c.meta.ID, err)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	applyResources(spec.Linux.Resources, res)
	if err := ctr.Update(ctx, func(_ context.Context, _ *containerd.Client, rec *containers.Container) error {
		a, err := typeurl.MarshalAnyToProto(spec)
		if err != nil {
			return err
		}
		rec.Spec = a
		return nil
	}); err != nil {
		return nil, fmt.Errorf("update container %s: %w", c.meta.ID, err)
	}
	c.mu.Lock()
	running := c.status.state() == runtimeapi.ContainerState_CONTAINER_RUNNING
	c.mu.Unlock()
	if task != nil && running {
		if err := task.Update(ctx, containerd.WithResources(spec.Linux.Resources)); err != nil {
			return nil, fmt.Errorf("update container %s: %w", c.meta.ID, err)
		}
	}
	r.nri.postUpdateContainer(ctx, c)
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// logReopenInterval is how often a crilog writer checks for rotation.
const logReopenInterval = 100 * time.Millisecond

// ReopenContainerLog: the log writer reopens a rotated-away file by itself
// within logReopenInterval; this waits until the new file exists.
func (r *runtimeService) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	state := c.status.state()
	c.mu.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("reopen log of container %s: it is %s: %w", c.meta.ID, state, errdefs.ErrFailedPrecondition)
	}
	if c.meta.LogPath == "" {
		return &runtimeapi.ReopenContainerLogResponse{}, nil
	}
	c.mu.Lock()
	ownIO := c.io
	c.mu.Unlock()
	if ownIO != nil {
		// kcrid writes this log itself (container_attach_io.go).
		if err := ownIO.reopenLog(); err != nil {
			return nil, fmt.Errorf("reopen log of container %s: %w", c.meta.ID, err)
		}
		return &runtimeapi.ReopenContainerLogResponse{}, nil
	}
	deadline := time.Now().Add(10 * logReopenInterval)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(c.meta.LogPath); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(logReopenInterval / 4):
		}
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
