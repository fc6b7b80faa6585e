package cri

// Recovery: what kcrid assumes and guarantees across its own restarts.
//
// Assumes:
//   - containerd kept running (or was restarted with its metadata intact)
//     while kcrid was down; kcrid's state is entirely in containerd's
//     container records (labels + the io.kcrid.meta/io.kcrid.status
//     extensions, see meta.go) plus the sandbox dirs under RootDir and the
//     network namespaces under StateDir.
//   - only kcrid creates records with the io.kcrid.kind label in its
//     namespace.
//
// Guarantees, after New returns:
//   - every sandbox and container kcrid created and did not remove is listed
//     again with the same ID, name, config, creation time and state;
//   - a container still running is RUNNING; one that exited while kcrid was
//     down is EXITED with the exit code and time its task recorded (the task
//     is then deleted); one whose task vanished altogether (a reboot, a
//     crashed shim) is EXITED with code 255 and reason "Unknown";
//   - a sandbox whose pause process is gone is NOTREADY; its network is torn
//     down by the next StopPodSandbox/RemovePodSandbox as usual;
//   - logs were never interrupted: the log writers are children of the
//     shims, not of kcrid (crilog, started through binary:// by the shim);
//     a container with stdin or tty has FIFOs kcrid owns instead: they are
//     reopened, and output printed meanwhile waited in the pipes (see
//     container_attach_io.go);
//   - exits that happen during recovery are not lost: the event stream is
//     opened before recovery starts and recording an exit is idempotent.
//
// A crash in the middle of RunPodSandbox or CreateContainer can leave a
// netns, an IP or a snapshot that no record refers to; records always come
// last, so kcrid never lists a half-made object. Network namespaces under
// StateDir that no sandbox refers to are removed at start, after CNI DEL
// for the pod their owner file names (sandbox_netns.go), which gives the IP
// back; the snapshot goes with the creation lease (creation_lease.go).
// Image volumes (container_image_volume.go) of a container without a record
// are unmounted and their snapshots removed at start; those of a created
// container are mounted again if a reboot unmounted them.

import (
	"context"
	"fmt"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// recoverState rebuilds the in-memory index from containerd.
func (r *runtimeService) recoverState(ctx context.Context) error {
	records, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", labelKind))
	if err != nil {
		return fmt.Errorf("recover: list containers: %w", err)
	}
	// Sandboxes first: containers refer to them.
	pauseRootfsInUse, sandboxRecords := map[string]bool{}, map[string]bool{}
	for _, rec := range records {
		if rec.Labels[labelKind] == kindSandbox {
			pauseRootfsInUse[rec.SnapshotKey] = true
			sandboxRecords[rec.ID] = true
			if err := r.recoverSandbox(ctx, rec); err != nil {
				log.G(ctx).WithError(err).WithField("id", rec.ID).Warn("recover sandbox; skipped")
			}
		}
	}
	for _, rec := range records {
		if rec.Labels[labelKind] == kindContainer {
			if err := r.recoverContainer(ctx, rec); err != nil {
				log.G(ctx).WithError(err).WithField("id", rec.ID).Warn("recover container; skipped")
			}
		}
	}
	r.pauseRootfs = loadPauseRootfsPool(ctx, r.client, r.images.images.Snapshotter(), pauseRootfsInUse)
	r.removeOrphanNetns(ctx, sandboxRecords)
	r.removeOrphanSandboxDirs(ctx, sandboxRecords)
	r.removeOrphanImageVolumes(ctx)
	r.removeOrphanSandboxRecords(ctx)
	return nil
}

func (r *runtimeService) recoverSandbox(ctx context.Context, rec containers.Container) error {
	sb := &sandbox{}
	if err := getExtension(rec, extMeta, &sb.meta); err != nil {
		return err
	}
	if err := getExtension(rec, extStatus, &sb.status); err != nil {
		return err
	}
	cfg, err := decodeSandboxConfig(sb.meta.Config)
	if err != nil {
		return fmt.Errorf("decode sandbox config of %s: %w", rec.ID, err)
	}
	sb.config = cfg
	if sb.status.Ready {
		pid, running, err := r.taskState(ctx, rec.ID)
		if err != nil {
			return err
		}
		if running {
			sb.pid = pid
		} else {
			sb.status.Ready = false
			r.deleteTask(ctx, rec.ID)
			if err := r.updateStatus(ctx, rec.ID, sb.status); err != nil {
				return err
			}
		}
	}
	if err := r.sandboxes.reserve(sb.meta.Name, sb.meta.ID); err != nil {
		return err
	}
	r.sandboxes.add(sb.meta.ID, sb)
	return nil
}

func (r *runtimeService) recoverContainer(ctx context.Context, rec containers.Container) error {
	c := &container{exited: make(chan struct{})}
	if err := getExtension(rec, extMeta, &c.meta); err != nil {
		return err
	}
	if err := getExtension(rec, extStatus, &c.status); err != nil {
		return err
	}
	cfg, err := decodeContainerConfig(c.meta.Config)
	if err != nil {
		return fmt.Errorf("decode container config of %s: %w", rec.ID, err)
	}
	c.config = cfg
	if err := r.containers.reserve(c.meta.Name, c.meta.ID); err != nil {
		return err
	}
	r.containers.add(c.meta.ID, c)
	// Reopen (or drop) the FIFOs of a container whose stdio kcrid owns.
	defer r.recoverContainerIO(c)
	if c.status.state() == runtimeapi.ContainerState_CONTAINER_EXITED {
		close(c.exited)
		return nil
	}
	if c.status.state() == runtimeapi.ContainerState_CONTAINER_CREATED {
		// Its image volumes are mounted on the host when it starts; a
		// reboot unmounted them. Kept listed if that fails: the start
		// then fails and says why.
		if err := r.restoreImageVolumes(ctx, c); err != nil {
			log.G(ctx).WithError(err).WithField("id", c.meta.ID).Warn("restore image volumes")
		}
	}
	return r.reconcileContainer(ctx, c)
}

// reconcileContainer compares a container's recorded state with its task.
func (r *runtimeService) reconcileContainer(ctx context.Context, c *container) error {
	_, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil {
		return err
	}
	if task == nil {
		c.mu.Lock()
		started := c.status.StartedAt != 0
		c.mu.Unlock()
		if started {
			r.recordContainerExit(ctx, c, exitInfo{code: 255})
			c.mu.Lock()
			c.status.Reason = "Unknown"
			c.status.Message = "the container's task was gone when kcrid recovered"
			_ = r.updateStatus(ctx, c.meta.ID, c.status)
			c.mu.Unlock()
		}
		return nil
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("task status of %s: %w", c.meta.ID, err)
	}
	switch st.Status {
	case containerd.Stopped:
		r.recordContainerExit(ctx, c, exitInfo{code: st.ExitStatus, at: st.ExitTime})
		r.deleteTask(ctx, c.meta.ID)
	case containerd.Created:
		// Crashed between task create and start: not started after all.
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	default:
		c.mu.Lock()
		if c.status.StartedAt == 0 {
			c.status.StartedAt = time.Now().UnixNano()
			_ = r.updateStatus(ctx, c.meta.ID, c.status)
		}
		c.mu.Unlock()
	}
	return nil
}

// taskState reports whether id has a live task, and its pid.
func (r *runtimeService) taskState(ctx context.Context, id string) (uint32, bool, error) {
	_, task, err := r.loadTask(ctx, id)
	if err != nil || task == nil {
		return 0, false, err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return 0, false, err
	}
	return task.Pid(), st.Status == containerd.Running || st.Status == containerd.Paused, nil
}

// reconcile re-checks every live object against containerd, after the
// event stream was lost.
func (r *runtimeService) reconcile(ctx context.Context) error {
	for _, sb := range r.sandboxes.list() {
		sb.mu.Lock()
		ready := sb.status.Ready
		sb.mu.Unlock()
		if !ready {
			continue
		}
		if _, running, err := r.taskState(ctx, sb.meta.ID); err == nil && !running {
			r.recordSandboxExit(ctx, sb)
			r.deleteTask(ctx, sb.meta.ID)
		}
	}
	for _, c := range r.containers.list() {
		c.mu.Lock()
		state := c.status.state()
		c.mu.Unlock()
		if state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			if err := r.reconcileContainer(ctx, c); err != nil {
				log.G(ctx).WithError(err).WithField("id", c.meta.ID).Warn("reconcile container")
			}
		}
	}
	return nil
}
