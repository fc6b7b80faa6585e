package cri

import (
	"context"
	"fmt"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
)

// createTask creates container id's task on its rootfs mounts (asked of
// the snapshotter when not known) and returns the task's pid and IO.
//
// containerd's Container.NewTask reads the container record twice and
// asks the snapshotter for the mounts before it creates the task: three
// round trips on the path of every pod and container start, for what kcrid
// knows already (the mounts come with the rootfs Prepare; the record's
// runtime and options are containerd's to read on its side).
func (r *runtimeService) createTask(ctx context.Context, id string, rootfs []mount.Mount, creator cio.Creator) (_ uint32, _ cio.IO, retErr error) {
	if rootfs == nil {
		mounts, err := r.client.SnapshotService(r.images.images.Snapshotter()).Mounts(ctx, id)
		if err != nil {
			return 0, nil, fmt.Errorf("rootfs mounts: %w", err)
		}
		rootfs = mounts
	}
	taskIO, err := creator(id)
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if retErr != nil {
			taskIO.Cancel()
			taskIO.Close()
		}
	}()
	cfg := taskIO.Config()
	req := &tasks.CreateTaskRequest{
		ContainerID: id,
		Terminal:    cfg.Terminal,
		Stdin:       cfg.Stdin,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
	}
	for _, m := range rootfs {
		req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	resp, err := r.client.TaskService().Create(ctx, req)
	if err != nil {
		return 0, nil, errgrpc.ToNative(err)
	}
	return resp.GetPid(), taskIO, nil
}

// startCreatedTask starts the task createTask made.
func (r *runtimeService) startCreatedTask(ctx context.Context, id string) error {
	if _, err := r.client.TaskService().Start(ctx, &tasks.StartRequest{ContainerID: id}); err != nil {
		return errgrpc.ToNative(err)
	}
	return nil
}

// deleteCreatedTask kills and deletes a task that createTask made, after a
// later step failed, and closes its IO.
func (r *runtimeService) deleteCreatedTask(ctx context.Context, id string, taskIO cio.IO) {
	defer func() {
		if taskIO != nil {
			taskIO.Cancel()
			taskIO.Close()
		}
	}()
	_, task, err := r.loadTask(ctx, id)
	if err == nil && task != nil {
		_, err = task.Delete(ctx, containerd.WithProcessKill)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("id", id).Warn("delete a task that failed to start")
	}
}
