package cri

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/crilog"
)

// StartContainer creates and starts the task. Its output goes to the log
// writer: the shim runs LogWriter (kcrid itself) as a crilog writer, so
// logging goes on while kcrid is down (see docs/kcrid.md); a container
// with stdin or tty gets FIFOs kcrid owns instead, so it can be attached.
// A start that fails leaves the container exited with reason StartError,
// as the kubelet expects.
func (r *runtimeService) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	sb, err := r.sandboxes.get(c.meta.SandboxID)
	if err != nil {
		return nil, fmt.Errorf("start container %s: pod sandbox: %w", c.meta.ID, err)
	}
	sb.mu.Lock()
	ready := sb.status.Ready
	sb.mu.Unlock()
	if !ready {
		return nil, fmt.Errorf("start container %s: pod sandbox %s is not ready: %w", c.meta.ID, sb.meta.ID, errdefs.ErrFailedPrecondition)
	}

	defer r.nri.blockPluginSync(ctx).Unblock() // a plugin synchronizing sees it created, then started
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	state, removing := c.status.state(), c.status.Removing
	c.mu.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_CREATED || removing {
		return nil, fmt.Errorf("start container %s: it is %s, not created: %w", c.meta.ID, state, errdefs.ErrFailedPrecondition)
	}
	// Stdio: kcrid's own FIFOs for a container with stdin or tty (attach
	// needs someone to feed stdin, see container_attach_io.go), else the
	// shim's log writer.
	creator := cio.NullIO
	ownIO, err := r.startContainerIO(c)
	switch {
	case ownIO != nil:
		creator = ownIO.creator()
	case c.meta.LogPath != "":
		creator = cio.BinaryIO(r.cfg.LogWriter, crilog.WriterArgs(c.meta.LogPath))
	}
	if err == nil {
		err = r.nri.startContainer(ctx, sb, c)
	}
	if err == nil {
		err = r.startTask(ctx, c, creator)
	}
	if err != nil {
		if ownIO != nil {
			ownIO.remove()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.status.StartedAt = nowNano()
		c.status.FinishedAt = c.status.StartedAt
		c.status.ExitCode = 128
		c.status.Reason = "StartError"
		c.status.Message = err.Error()
		if perr := r.updateStatus(ctx, c.meta.ID, c.status); perr != nil {
			log.G(ctx).WithError(perr).Warn("persist start error")
		}
		close(c.exited)
		r.nri.notifyContainerExit(c)
		return nil, fmt.Errorf("start container %s: %w", c.meta.ID, err)
	}
	defer r.nri.postStartContainer(ctx, sb, c)
	defer r.publishContainerEvent(ctx, c.meta.ID, c.meta.SandboxID, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT) // runs after c.mu is released
	c.mu.Lock()
	defer c.mu.Unlock()
	c.io = ownIO
	c.status.StartedAt = nowNano()
	if c.status.FinishedAt != 0 && c.status.FinishedAt < c.status.StartedAt {
		// It exited (and the event loop recorded it) before we got here.
		c.status.StartedAt = c.status.FinishedAt
	}
	r.persistStartLater(ctx, c)
	return &runtimeapi.StartContainerResponse{}, nil
}

// persistStartLater records the start time in the container's record
// after StartContainer returned: the start itself is in containerd (the
// task), and a kcrid that dies before the record is written finds the
// task at its next start and takes that time instead (restart.go). The
// write holds c.mu, so it writes the newest status, an exit recorded in
// the meantime included.
func (r *runtimeService) persistStartLater(ctx context.Context, c *container) {
	ctx = context.WithoutCancel(ctx)
	r.background.Add(1)
	go func() {
		defer r.background.Done()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := r.updateStatus(ctx, c.meta.ID, c.status); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("persist start")
		}
	}()
}

// startTask creates and starts c's task.
func (r *runtimeService) startTask(ctx context.Context, c *container, creator cio.Creator) error {
	_, taskIO, err := r.createTask(ctx, c.meta.ID, c.rootfs, creator)
	if err != nil {
		return fmt.Errorf("create task: %w", err)
	}
	if err := r.startCreatedTask(ctx, c.meta.ID); err != nil {
		r.deleteCreatedTask(context.WithoutCancel(ctx), c.meta.ID, taskIO)
		return fmt.Errorf("start task: %w", err)
	}
	return nil
}
