package containers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
)

// States a container is shown in.
const (
	StateCreated = "created"
	StateRunning = "running"
	StatePaused  = "paused"
	StateExited  = "exited"
	StateUnknown = "unknown"
)

// Summary is one container as `kctr ps` shows it.
type Summary struct {
	ID        string
	Name      string
	Image     string
	Command   string
	CreatedAt time.Time
	State     string
	Pid       uint32
	ExitCode  uint32
	ExitedAt  time.Time
	Labels    map[string]string
}

// Labels the kubelet puts on what it runs through a CRI server.
const (
	labelPodNamespace = "io.kubernetes.pod.namespace"
	labelPodName      = "io.kubernetes.pod.name"
	labelContainer    = "io.kubernetes.container.name"
)

// DisplayName is the name kctr shows: the --name given, or for a container
// a CRI server made for Kubernetes, k8s://<namespace>/<pod>/<container>.
func DisplayName(labels map[string]string) string {
	if name := labels[LabelName]; name != "" {
		return name
	}
	if pod := labels[labelPodName]; pod != "" {
		name := "k8s://" + labels[labelPodNamespace] + "/" + pod
		if c := labels[labelContainer]; c != "" {
			name += "/" + c
		}
		return name
	}
	return ""
}

// List returns the namespace's containers, newest first; without all only
// running (and paused) ones.
func (m *Manager) List(ctx context.Context, all bool) ([]Summary, error) {
	records, err := m.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// One call for every task instead of one per container.
	tasks, err := m.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	byID := make(map[string]*tasktypes.Process, len(tasks.Tasks))
	for _, t := range tasks.Tasks {
		byID[t.ID] = t
	}
	out := make([]Summary, 0, len(records))
	for _, record := range records {
		summary := summarize(record, byID[record.ID])
		if !all && summary.State != StateRunning && summary.State != StatePaused {
			continue
		}
		out = append(out, summary)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

func summarize(record containers.Container, task *tasktypes.Process) Summary {
	s := Summary{
		ID:        record.ID,
		Name:      DisplayName(record.Labels),
		Image:     record.Image,
		CreatedAt: record.CreatedAt,
		State:     StateCreated,
		Labels:    record.Labels,
	}
	if record.Spec != nil {
		var spec oci.Spec
		if err := typeurl.UnmarshalTo(record.Spec, &spec); err == nil && spec.Process != nil {
			s.Command = strings.Join(spec.Process.Args, " ")
		}
	}
	if task == nil {
		return s
	}
	s.Pid = task.Pid
	switch containerd.ProcessStatus(strings.ToLower(task.Status.String())) {
	case containerd.Running:
		s.State = StateRunning
	case containerd.Paused, containerd.Pausing:
		s.State = StatePaused
	case containerd.Stopped:
		s.State = StateExited
		s.ExitCode = task.ExitStatus
		if task.ExitedAt != nil {
			s.ExitedAt = task.ExitedAt.AsTime()
		}
	case containerd.Created:
		s.State = StateCreated
	default:
		s.State = StateUnknown
	}
	return s
}
