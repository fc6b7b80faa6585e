package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"
)

// LogsOptions select what `kctr logs` prints.
type LogsOptions struct {
	Follow     bool
	Timestamps bool
	// Tail is the number of last lines; negative means all.
	Tail  int64
	Since time.Time
}

// Logs copies the container's log to stdout and stderr. With Follow it
// keeps going until the container stops or ctx ends.
func (m *Manager) Logs(ctx context.Context, idOrName string, opts LogsOptions, stdout, stderr io.Writer) error {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return err
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return err
	}
	path := labels[LabelLogPath]
	if path == "" {
		return fmt.Errorf("container %s keeps no log (it was not made by kctr): %w", idOrName, errdefs.ErrFailedPrecondition)
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		// Created but never started, or run attached with --rm.
		return nil
	}
	readOpts := &logs.LogOptions{Follow: opts.Follow, Timestamp: opts.Timestamps, Since: opts.Since}
	if opts.Tail >= 0 {
		tail := opts.Tail
		readOpts.TailLines = &tail
	}
	status := &taskStatusSource{container: container}
	if err := logs.ReadLogs(ctx, path, container.ID(), readOpts, status, stdout, stderr); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of %s: %w", idOrName, err)
	}
	return nil
}

// taskStatusSource answers the one question the kubelet's log reader asks
// while following a log: is the container still running?
type taskStatusSource struct {
	internalapi.RuntimeService
	container containerd.Container
}

func (s *taskStatusSource) ContainerStatus(ctx context.Context, _ string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	if task, err := s.container.Task(ctx, nil); err == nil {
		if st, err := task.Status(ctx); err == nil && (st.Status == containerd.Running || st.Status == containerd.Paused) {
			state = runtimeapi.ContainerState_CONTAINER_RUNNING
		}
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: s.container.ID(), State: state}}, nil
}
