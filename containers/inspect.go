package containers

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// Details is `kctr inspect` of a container, shaped like Docker's so that
// `--format '{{.State.Status}}'` and `'{{.Id}}'` templates carry over
// (hence Id, not ID).
type Details struct {
	Id        string            `json:"Id"`
	Name      string            `json:"Name"`
	Created   time.Time         `json:"Created"`
	Path      string            `json:"Path"`
	Args      []string          `json:"Args"`
	State     State             `json:"State"`
	Image     string            `json:"Image"`
	LogPath   string            `json:"LogPath"`
	Namespace string            `json:"Namespace"`
	Runtime   string            `json:"Runtime"`
	Snapshot  string            `json:"Snapshot"`
	Config    Config            `json:"Config"`
	Labels    map[string]string `json:"Labels"`
}

// State is the container's task state.
type State struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Pid        uint32    `json:"Pid"`
	ExitCode   uint32    `json:"ExitCode"`
	FinishedAt time.Time `json:"FinishedAt,omitzero"`
}

// Config is what the container runs.
type Config struct {
	Hostname   string   `json:"Hostname"`
	User       string   `json:"User"`
	Env        []string `json:"Env"`
	Cmd        []string `json:"Cmd"`
	WorkingDir string   `json:"WorkingDir"`
	Tty        bool     `json:"Tty"`
	Image      string   `json:"Image"`
}

// Inspect describes a container.
func (m *Manager) Inspect(ctx context.Context, idOrName string) (*Details, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	info, err := container.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", idOrName, err)
	}
	spec, err := container.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", idOrName, err)
	}
	d := &Details{
		Id:       info.ID,
		Name:     DisplayName(info.Labels),
		Created:  info.CreatedAt,
		Image:    info.Image,
		LogPath:  info.Labels[LabelLogPath],
		Runtime:  info.Runtime.Name,
		Snapshot: info.SnapshotKey,
		Labels:   info.Labels,
		State:    State{Status: StateCreated},
	}
	d.Namespace, _ = namespaceOf(ctx)
	if spec.Process != nil {
		if len(spec.Process.Args) > 0 {
			d.Path, d.Args = spec.Process.Args[0], spec.Process.Args[1:]
		}
		d.Config = Config{
			Hostname:   spec.Hostname,
			User:       fmt.Sprintf("%d:%d", spec.Process.User.UID, spec.Process.User.GID),
			Env:        spec.Process.Env,
			Cmd:        spec.Process.Args,
			WorkingDir: spec.Process.Cwd,
			Tty:        spec.Process.Terminal,
			Image:      info.Image,
		}
	}
	task, err := container.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("inspect %s: %w", idOrName, err)
	default:
		status, err := task.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", idOrName, err)
		}
		d.State.Pid = task.Pid()
		switch status.Status {
		case containerd.Running:
			d.State.Status, d.State.Running = StateRunning, true
		case containerd.Paused, containerd.Pausing:
			d.State.Status, d.State.Paused = StatePaused, true
		case containerd.Stopped:
			d.State.Status = StateExited
			d.State.ExitCode = status.ExitStatus
			d.State.FinishedAt = status.ExitTime
			d.State.Pid = 0
		}
	}
	return d, nil
}
