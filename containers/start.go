package containers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/crilog"
)

// Start starts a created or exited container in the background. Its output
// goes to its log file through a log writer the shim runs, so logging goes
// on after kctr exits. Starting a running container does nothing.
func (m *Manager) Start(ctx context.Context, idOrName string) (containerd.Container, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	if err := setDesiredState(ctx, container, true); err != nil {
		return nil, fmt.Errorf("start %s: %w", shortID(container.ID()), err)
	}
	if err := m.deleteExitedTask(ctx, container); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return container, nil
		}
		return nil, err
	}
	creator, err := m.logCreator(ctx, container)
	if err != nil {
		return nil, err
	}
	task, err := container.NewTask(ctx, creator)
	if err != nil {
		return nil, fmt.Errorf("create task for %s: %w", shortID(container.ID()), err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, fmt.Errorf("start %s: %w", shortID(container.ID()), err)
	}
	return container, nil
}

// RunDetached creates a container and starts it in the background, with
// its output going to its log file; the network is set up while the task
// is being made. On error nothing is left behind.
func (m *Manager) RunDetached(ctx context.Context, opts CreateOptions) (_ containerd.Container, retErr error) {
	container, network, err := m.create(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			_ = network.finish(context.WithoutCancel(ctx), container)
			_ = m.destroy(context.WithoutCancel(ctx), container, nil)
		}
	}()
	creator, err := m.logCreator(ctx, container)
	if err != nil {
		return nil, err
	}
	task, err := container.NewTask(ctx, creator)
	if err != nil {
		return nil, fmt.Errorf("create task for %s: %w", shortID(container.ID()), err)
	}
	if err := network.finish(ctx, container); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, err
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, fmt.Errorf("start %s: %w", shortID(container.ID()), err)
	}
	return container, nil
}

// deleteExitedTask removes the task a container kept after it exited, so a
// new one can be made. A running task is reported as AlreadyExists.
func (m *Manager) deleteExitedTask(ctx context.Context, container containerd.Container) error {
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load task of %s: %w", shortID(container.ID()), err)
	}
	status, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("task status of %s: %w", shortID(container.ID()), err)
	}
	if status.Status == containerd.Running || status.Status == containerd.Paused {
		return fmt.Errorf("container %s is %s: %w", shortID(container.ID()), status.Status, errdefs.ErrAlreadyExists)
	}
	if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete exited task of %s: %w", shortID(container.ID()), err)
	}
	return nil
}

// logCreator sends the task's output to the container's log file.
func (m *Manager) logCreator(ctx context.Context, container containerd.Container) (cio.Creator, error) {
	labels, err := container.Labels(ctx)
	if err != nil {
		return nil, err
	}
	path := labels[LabelLogPath]
	if path == "" {
		return cio.NullIO, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	writer, err := m.logWriterBinary()
	if err != nil {
		return nil, err
	}
	spec, err := container.Spec(ctx)
	if err != nil {
		return nil, err
	}
	if spec.Process != nil && spec.Process.Terminal {
		return cio.TerminalBinaryIO(writer, crilog.WriterArgs(path)), nil
	}
	return cio.BinaryIO(writer, crilog.WriterArgs(path)), nil
}
