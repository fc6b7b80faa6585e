package containers

import (
	"context"
	"fmt"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/runtime/restart"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/crilog"
)

// Restart policies are kept by containerd's restart monitor, not by kctr:
// it watches containers carrying its labels (every 10 s by default) and
// starts their task again, logging through the same log writer. So a
// container restarts while no kctr runs, and after a reboot.

// ParseRestartPolicy checks --restart: no, always, unless-stopped,
// on-failure[:N].
func ParseRestartPolicy(s string) (string, error) {
	if s == "" || s == "no" {
		return "", nil
	}
	policy, err := restart.NewPolicy(s)
	if err != nil {
		return "", fmt.Errorf("invalid restart policy %q (want no, always, unless-stopped or on-failure[:N]): %w", s, errdefs.ErrInvalidArgument)
	}
	return policy.String(), nil
}

// restartLabels are the restart monitor's labels for a new container.
func (m *Manager) restartLabels(policy, logPath string) (map[string]string, error) {
	if policy == "" {
		return nil, nil
	}
	writer, err := m.logWriterBinary()
	if err != nil {
		return nil, err
	}
	uri, err := cio.LogURIGenerator("binary", writer, crilog.WriterArgs(logPath))
	if err != nil {
		return nil, fmt.Errorf("log URI for the restart monitor: %w", err)
	}
	return map[string]string{
		restart.PolicyLabel: policy,
		restart.StatusLabel: string(containerd.Running),
		restart.LogURILabel: uri.String(),
	}, nil
}

// setDesiredState tells the restart monitor whether the user wants the
// container running; a stopped container with a policy stays stopped.
func setDesiredState(ctx context.Context, container containerd.Container, running bool) error {
	labels, err := container.Labels(ctx)
	if err != nil {
		return err
	}
	if labels[restart.PolicyLabel] == "" {
		return nil
	}
	status, stopped := string(containerd.Running), "false"
	if !running {
		status, stopped = string(containerd.Stopped), "true"
	}
	_, err = container.SetLabels(ctx, map[string]string{restart.StatusLabel: status, restart.ExplicitlyStoppedLabel: stopped})
	return err
}
