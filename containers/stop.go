package containers

import (
	"context"
	"fmt"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
)

// DefaultStopTimeout is how long Stop waits after the stop signal.
const DefaultStopTimeout = 10 * time.Second

// Stop sends the image's stop signal (SIGTERM unless the image says
// otherwise), waits up to timeout, then kills. The exited task stays, so
// the exit code is still shown; stopping a stopped container does nothing.
func (m *Manager) Stop(ctx context.Context, idOrName string, timeout time.Duration) error {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return err
	}
	if err := setDesiredState(ctx, container, false); err != nil {
		return fmt.Errorf("stop %s: %w", shortID(container.ID()), err)
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", shortID(container.ID()), err)
	}
	status, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: %w", shortID(container.ID()), err)
	}
	if status.Status != containerd.Running && status.Status != containerd.Paused {
		return nil
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: %w", shortID(container.ID()), err)
	}
	stopSignal, err := containerd.GetStopSignal(ctx, container, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("stop %s: %w", shortID(container.ID()), err)
	}
	if status.Status == containerd.Paused {
		_ = task.Resume(ctx)
	}
	if err := task.Kill(ctx, stopSignal); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: send %v: %w", shortID(container.ID()), stopSignal, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: kill: %w", shortID(container.ID()), err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends a signal (a name like "HUP" or "SIGHUP", or a number) to the
// container's main process.
func (m *Manager) Kill(ctx context.Context, idOrName, signalName string) error {
	sig, err := signal.ParseSignal(signalName)
	if err != nil {
		return fmt.Errorf("kill: invalid signal %q: %w", signalName, errdefs.ErrInvalidArgument)
	}
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("kill %s: container is not running: %w", shortID(container.ID()), errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return fmt.Errorf("kill %s: %w", shortID(container.ID()), err)
	}
	if err := task.Kill(ctx, sig); err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("kill %s: container is not running: %w", shortID(container.ID()), errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("kill %s: %w", shortID(container.ID()), err)
	}
	return nil
}

// Wait blocks until the container exits and returns its exit code. For a
// container that already exited it returns at once.
func (m *Manager) Wait(ctx context.Context, idOrName string) (int, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return 0, err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("wait %s: container was never started: %w", shortID(container.ID()), errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return 0, fmt.Errorf("wait %s: %w", shortID(container.ID()), err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait %s: %w", shortID(container.ID()), err)
	}
	select {
	case status := <-exited:
		code, _, err := status.Result()
		return int(code), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
