package containers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// Remove deletes a container, its snapshot and its logs. A running
// container is refused unless force, which kills it first.
func (m *Manager) Remove(ctx context.Context, idOrName string, force bool) (string, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return "", err
	}
	id := container.ID()
	// The restart monitor must not bring it back while it is removed.
	if err := setDesiredState(ctx, container, false); err != nil && !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("remove %s: %w", shortID(id), err)
	}
	task, err := container.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return "", fmt.Errorf("remove %s: %w", shortID(id), err)
	default:
		status, err := task.Status(ctx)
		if err != nil {
			return "", fmt.Errorf("remove %s: %w", shortID(id), err)
		}
		if (status.Status == containerd.Running || status.Status == containerd.Paused) && !force {
			return "", fmt.Errorf("container %s is running: stop it first or remove with -f: %w", idOrName, errdefs.ErrFailedPrecondition)
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return "", fmt.Errorf("remove %s: delete task: %w", shortID(id), err)
		}
	}
	return id, m.destroy(ctx, container, nil)
}

// destroy removes a container: its network (CNI DEL and namespace), the
// record with its snapshot, and its directory. deleteTask, when given, is
// run first, beside CNI DEL: neither depends on the other.
func (m *Manager) destroy(ctx context.Context, container containerd.Container, deleteTask func() error) error {
	id := container.ID()
	labels, err := container.Labels(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", shortID(id), err)
	}
	// CNI DEL does not depend on the task's or the record's deletion.
	released := make(chan error, 1)
	go func() { released <- m.bridge.detach(ctx, id, labels) }()
	if deleteTask != nil {
		if err := deleteTask(); err != nil {
			<-released
			return fmt.Errorf("remove %s: delete task: %w", shortID(id), err)
		}
	}
	if err := container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		<-released
		return fmt.Errorf("remove %s: %w", shortID(id), err)
	}
	if err := <-released; err != nil {
		return fmt.Errorf("remove %s: release network: %w", shortID(id), err)
	}
	if path := labels[LabelLogPath]; path != "" {
		if err := os.RemoveAll(filepath.Dir(path)); err != nil {
			return fmt.Errorf("remove files of %s: %w", shortID(id), err)
		}
	}
	return nil
}
