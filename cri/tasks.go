package cri

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/moby/sys/signal"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// exitInfo is how a task ended.
type exitInfo struct {
	code uint32
	at   time.Time
}

// loadTask returns the task of container id, or nil when it has none.
func (r *runtimeService) loadTask(ctx context.Context, id string) (containerd.Container, containerd.Task, error) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	task, err := ctr.Task(ctx, nil)
	// containerd asks the shim for the task's state with a short timeout
	// of its own (2s); a shim busy under load can miss it. Retry while our
	// caller's context allows.
	for attempt := 0; attempt < 3 && errdefs.IsDeadlineExceeded(err) && ctx.Err() == nil; attempt++ {
		log.G(ctx).WithField("id", id).Debug("task state timed out in containerd; retrying")
		task, err = ctr.Task(ctx, nil)
	}
	if errdefs.IsNotFound(err) {
		return ctr, nil, nil
	}
	if err != nil {
		return ctr, nil, fmt.Errorf("load task %s: %w", id, err)
	}
	return ctr, task, nil
}

// killAndWait sends sig, waits up to grace (none when 0), then SIGKILL and
// waits for the exit; then it deletes the task.
func killAndWait(ctx context.Context, task containerd.Task, sig syscall.Signal, grace time.Duration) (exitInfo, error) {
	statusC, err := task.Wait(ctx)
	if err != nil {
		return exitInfo{}, fmt.Errorf("wait for task %s: %w", task.ID(), err)
	}
	var st containerd.ExitStatus
	exited := false
	if grace > 0 && sig != syscall.SIGKILL {
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("id", task.ID()).Debug("stop signal")
		}
		timer := time.NewTimer(grace)
		select {
		case st = <-statusC:
			exited = true
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return exitInfo{}, ctx.Err()
		}
		timer.Stop()
	}
	if !exited {
		if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("id", task.ID()).Debug("SIGKILL")
		}
		select {
		case st = <-statusC:
		case <-ctx.Done():
			return exitInfo{}, ctx.Err()
		}
	}
	if err := deleteExitedTask(ctx, task); err != nil {
		return exitInfo{}, err
	}
	return exitInfo{code: st.ExitCode(), at: st.ExitTime()}, nil
}

// parseSignal accepts "SIGTERM", "TERM" or a number; empty means SIGTERM.
func parseSignal(s string) syscall.Signal {
	if s == "" {
		return syscall.SIGTERM
	}
	sig, err := signal.ParseSignal(s)
	if err != nil {
		return syscall.SIGTERM
	}
	return sig
}

// updateStatus writes a JSON status extension to container id's record.
func (r *runtimeService) updateStatus(ctx context.Context, id string, v any) error {
	return r.updateExtension(context.WithoutCancel(ctx), id, extStatus, typeStatus, v)
}

// updateExtension replaces one extension of a container record in a single
// call (an update of that field path alone), not the read-modify-write of
// the whole record that containerd.Container.Update makes.
func (r *runtimeService) updateExtension(ctx context.Context, id, name, typeURL string, v any) error {
	rec := containers.Container{ID: id}
	if err := setExtension(&rec, name, typeURL, v); err != nil {
		return err
	}
	if _, err := r.client.ContainerService().Update(ctx, rec, "extensions."+name); err != nil {
		return fmt.Errorf("update %s of %s: %w", name, id, err)
	}
	return nil
}

// recordContainerExit marks c exited with exit, once, persists it and
// reports it on the event stream.
func (r *runtimeService) recordContainerExit(ctx context.Context, c *container, exit exitInfo) {
	if r.markContainerExited(ctx, c, exit) {
		r.publishContainerEvent(ctx, c.meta.ID, c.meta.SandboxID, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
}

// markContainerExited records the exit unless one is recorded already, and
// reports whether it did.
func (r *runtimeService) markContainerExited(ctx context.Context, c *container, exit exitInfo) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.FinishedAt != 0 {
		return false
	}
	at := exit.at
	if at.IsZero() || at.Unix() <= 0 {
		at = time.Now()
	}
	c.status.FinishedAt = at.UnixNano()
	c.status.ExitCode = int32(exit.code)
	c.status.Reason = exitReason(c.status.ExitCode, c.oom)
	if err := r.updateStatus(ctx, c.meta.ID, c.status); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("persist exit")
	}
	close(c.exited)
	return true
}

// recordSandboxExit marks sb not ready once its pause process is gone and
// reports it on the event stream.
func (r *runtimeService) recordSandboxExit(ctx context.Context, sb *sandbox) {
	if r.markSandboxExited(ctx, sb) {
		r.publishSandboxEvent(ctx, sb.meta.ID, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
}

// markSandboxExited marks sb not ready, once; it reports whether it did.
func (r *runtimeService) markSandboxExited(ctx context.Context, sb *sandbox) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.status.Ready {
		return false
	}
	sb.status.Ready = false
	sb.pid = 0
	if err := r.updateStatus(ctx, sb.meta.ID, sb.status); err != nil {
		log.G(ctx).WithError(err).WithField("sandbox", sb.meta.ID).Warn("persist sandbox state")
	}
	return true
}

// deleteTask removes the (exited) task of id; a missing task is fine.
func (r *runtimeService) deleteTask(ctx context.Context, id string) {
	_, task, err := r.loadTask(ctx, id)
	if err != nil || task == nil {
		return
	}
	if err := deleteExitedTask(ctx, task); err != nil {
		log.G(ctx).WithError(err).WithField("id", id).Warn("delete exited task")
	}
}

// taskDeletes holds a mutex per task ID being deleted.
var taskDeletes sync.Map

// deleteExitedTask deletes a task that has exited. The event loop and a
// Stop may both try; the loser sees NotFound or, while the shim shuts down,
// a closed connection, so a failure counts only if the task is still there.
func deleteExitedTask(ctx context.Context, task containerd.Task) error {
	// One delete per task at a time: the loser then finds the task gone
	// instead of racing the shim's shutdown (with shims grouped per pod, a
	// concurrent second delete could leave the shim running).
	mu, _ := taskDeletes.LoadOrStore(task.ID(), &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer func() {
		mu.(*sync.Mutex).Unlock()
		taskDeletes.Delete(task.ID())
	}()
	if _, err := task.Status(ctx); errdefs.IsNotFound(err) {
		return nil
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = task.Delete(ctx); err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
		if _, serr := task.Status(ctx); errdefs.IsNotFound(serr) {
			return nil
		}
	}
	return fmt.Errorf("delete task %s: %w", task.ID(), err)
}
