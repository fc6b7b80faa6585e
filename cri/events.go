package cri

import (
	"context"
	"fmt"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
)

// Exits are learnt from containerd's event stream (/tasks/exit and
// /tasks/oom in our namespace), never by polling. Events are handled one at
// a time, in order; recording an exit is idempotent, so an exit seen both
// here and by StopContainer is recorded once.

func (r *runtimeService) eventFilters() []string {
	return []string{
		fmt.Sprintf(`topic=="/tasks/exit",namespace==%q`, r.cfg.Namespace),
		fmt.Sprintf(`topic=="/tasks/oom",namespace==%q`, r.cfg.Namespace),
	}
}

// subscribe opens the event stream. Call it before recovery so no exit
// falls between the two.
func (r *runtimeService) subscribe(ctx context.Context) (<-chan *events.Envelope, <-chan error) {
	return r.client.Subscribe(ctx, r.eventFilters()...)
}

// handleEvents runs until ctx ends. When the stream breaks (containerd
// restarted) it resubscribes and reconciles task states, since exits may
// have happened in between.
func (r *runtimeService) handleEvents(ctx context.Context, ch <-chan *events.Envelope, errs <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-ch:
			if e != nil {
				r.handleEnvelope(ctx, e)
			}
		case err := <-errs:
			if ctx.Err() != nil {
				return
			}
			log.G(ctx).WithError(err).Warn("containerd event stream broke; resubscribing")
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			ch, errs = r.subscribe(ctx)
			if err := r.reconcile(ctx); err != nil {
				log.G(ctx).WithError(err).Warn("reconcile after event stream loss")
			}
		}
	}
}

func (r *runtimeService) handleEnvelope(ctx context.Context, e *events.Envelope) {
	v, err := typeurl.UnmarshalAny(e.Event)
	if err != nil {
		log.G(ctx).WithError(err).WithField("topic", e.Topic).Debug("undecodable event")
		return
	}
	switch ev := v.(type) {
	case *eventsapi.TaskExit:
		if ev.ID != ev.ContainerID {
			return // an exec process, handled by ExecSync
		}
		exit := exitInfo{code: ev.ExitStatus}
		if ev.ExitedAt != nil {
			exit.at = ev.ExitedAt.AsTime()
		}
		r.handleExit(ctx, ev.ContainerID, exit)
	case *eventsapi.TaskOOM:
		if c, err := r.containers.get(ev.ContainerID); err == nil && c.meta.ID == ev.ContainerID {
			c.mu.Lock()
			c.oom = true
			c.mu.Unlock()
		}
	}
}

// handleExit records the exit of a container or a pause process and
// deletes the task, which ends the shim and the log writer.
func (r *runtimeService) handleExit(ctx context.Context, id string, exit exitInfo) {
	if c, err := r.containers.get(id); err == nil && c.meta.ID == id {
		r.recordContainerExit(ctx, c, exit)
		r.nri.notifyContainerExit(c)
		r.deleteTask(ctx, id)
		return
	}
	if sb, err := r.sandboxes.get(id); err == nil && sb.meta.ID == id {
		r.recordSandboxExit(ctx, sb)
		r.deleteTask(ctx, id)
	}
}
