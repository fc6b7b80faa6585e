package cri

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopContainer sends the image's stop signal (SIGTERM by default), then
// SIGKILL after the timeout. Unknown IDs and stopped containers succeed.
func (r *runtimeService) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// exitWait bounds how long a stop waits for an exit that the event loop is
// recording when the task is already gone.
const exitWait = 5 * time.Second

func (r *runtimeService) stopContainer(ctx context.Context, c *container, grace time.Duration) error {
	defer r.nri.stopContainer(ctx, c) // once it no longer runs, however it got there
	c.mu.Lock()
	state := c.status.state()
	c.mu.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil
	}
	_, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", c.meta.ID, err)
	}
	if task != nil {
		exit, err := killAndWait(ctx, task, parseSignal(c.meta.StopSignal), grace)
		if err == nil {
			r.recordContainerExit(ctx, c, exit)
			return nil
		}
		if !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %s: %w", c.meta.ID, err)
		}
	}
	// The task is gone: the event loop has seen the exit and is recording it.
	select {
	case <-c.exited:
	case <-time.After(exitWait):
		r.recordContainerExit(ctx, c, exitInfo{code: 255})
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
