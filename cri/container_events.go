package cri

import (
	"context"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI event stream (GetContainerEvents) tells a kubelet running
// evented PLEG when containers and sandboxes are created, started, stopped
// and deleted. Sandbox events carry the sandbox ID as the container ID (the
// pause container's), as in containerd's CRI; every event carries the
// pod's status and the statuses of its containers at the time of the event.
//
// Lifecycle code calls publishContainerEvent / publishSandboxEvent after
// the change is recorded and outside any container or sandbox lock (building
// the statuses takes those locks). Events are not replayed: a subscriber
// sees what happens after it subscribed and relists for the rest.

// eventBufferSize is how many events a subscriber may fall behind before
// it is disconnected. A kubelet reads continuously; a pod start is about
// ten events.
const eventBufferSize = 1024

// eventBroadcaster fans events out to the subscribed streams. Publishing
// never blocks: a subscriber whose buffer is full is disconnected (the
// kubelet then relists and resubscribes), so a slow reader cannot hold up
// CRI calls. Its zero value is ready to use.
type eventBroadcaster struct {
	mu   sync.Mutex
	subs map[*eventSubscription]struct{}
	// phase is the last event type sent per container or sandbox ID, so
	// that events racing each other (a container that exits while
	// StartContainer is still recording its start) reach subscribers in
	// lifecycle order: nothing goes backwards, a STARTED that lost the race
	// is sent before its STOPPED, and a late one is dropped.
	phase  map[string]runtimeapi.ContainerEventType
	closed bool
}

// eventSubscription is one GetContainerEvents stream.
type eventSubscription struct {
	events chan *runtimeapi.ContainerEventResponse
	done   chan struct{} // closed when the broadcaster drops the subscription
	err    error         // why; set before done is closed
}

// subscribe registers a stream; cancel unregisters it.
func (b *eventBroadcaster) subscribe() (sub *eventSubscription, cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub = &eventSubscription{events: make(chan *runtimeapi.ContainerEventResponse, eventBufferSize), done: make(chan struct{})}
	if b.closed {
		sub.err = status.Error(codes.Unavailable, "kcrid is shutting down")
		close(sub.done)
		return sub, func() {}
	}
	if b.subs == nil {
		b.subs = map[*eventSubscription]struct{}{}
	}
	b.subs[sub] = struct{}{}
	return sub, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, sub)
	}
}

// subscribed reports whether anyone listens, so publishers can skip
// building statuses nobody reads.
func (b *eventBroadcaster) subscribed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// publish sends ev to every subscriber, in lifecycle order per ID.
func (b *eventBroadcaster) publish(ctx context.Context, ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.phase == nil {
		b.phase = map[string]runtimeapi.ContainerEventType{}
	}
	id, typ := ev.ContainerId, ev.ContainerEventType
	last, seen := b.phase[id]
	if seen && last >= typ {
		return // a later stage was already reported
	}
	if seen && last == runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT &&
		typ == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		started := proto.Clone(ev).(*runtimeapi.ContainerEventResponse)
		started.ContainerEventType = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		b.send(ctx, started)
	}
	if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		delete(b.phase, id)
	} else {
		b.phase[id] = typ
	}
	b.send(ctx, ev)
}

// send hands ev to each subscriber without waiting; b.mu is held.
func (b *eventBroadcaster) send(ctx context.Context, ev *runtimeapi.ContainerEventResponse) {
	for sub := range b.subs {
		select {
		case sub.events <- ev:
		default:
			log.G(ctx).WithField("buffered", eventBufferSize).Warn("disconnecting a container event subscriber that fell behind")
			sub.err = status.Errorf(codes.ResourceExhausted,
				"container event subscriber fell more than %d events behind; resubscribe and relist", eventBufferSize)
			close(sub.done)
			delete(b.subs, sub)
		}
	}
}

// close ends every subscription, so a graceful server stop does not wait
// for event streams that never end by themselves.
func (b *eventBroadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for sub := range b.subs {
		sub.err = status.Error(codes.Unavailable, "kcrid is shutting down")
		close(sub.done)
		delete(b.subs, sub)
	}
}

// GetContainerEvents streams events until the client goes away, falls
// behind, or kcrid stops.
func (r *runtimeService) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	ctx := stream.Context()
	sub, cancel := r.events.subscribe()
	defer cancel()
	log.G(ctx).Debug("container event subscriber connected")
	for {
		select {
		case ev := <-sub.events:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-sub.done:
			return sub.err
		case <-ctx.Done():
			log.G(ctx).Debug("container event subscriber gone")
			return toStatus(ctx.Err())
		}
	}
}

// publishContainerEvent reports a container's lifecycle change with the
// statuses of its pod. Call it with no container or sandbox lock held.
// With nobody subscribed the statuses are not built, but the event still
// passes through the broadcaster, which keeps its per-ID order current.
func (r *runtimeService) publishContainerEvent(ctx context.Context, containerID, sandboxID string, typ runtimeapi.ContainerEventType) {
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        containerID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if r.events.subscribed() {
		r.addEventStatuses(ctx, ev, sandboxID)
	}
	r.events.publish(ctx, ev)
}

// publishSandboxEvent reports sandbox lifecycle changes, in the given
// order, under the sandbox's own ID.
func (r *runtimeService) publishSandboxEvent(ctx context.Context, sandboxID string, types ...runtimeapi.ContainerEventType) {
	for _, typ := range types {
		r.publishContainerEvent(ctx, sandboxID, sandboxID, typ)
	}
}

// addEventStatuses fills in the pod status and container statuses as they
// are now. A pod already removed has no status (nil, as containerd sends
// it).
func (r *runtimeService) addEventStatuses(ctx context.Context, ev *runtimeapi.ContainerEventResponse, sandboxID string) {
	if resp, err := r.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sandboxID}); err == nil {
		ev.PodSandboxStatus = resp.GetStatus()
	} else if !errdefs.IsNotFound(err) {
		log.G(ctx).WithError(err).WithField("sandbox", sandboxID).Warn("pod status for a container event")
	}
	ev.ContainersStatuses = []*runtimeapi.ContainerStatus{}
	for _, c := range r.containersOf(sandboxID) {
		resp, err := r.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.meta.ID})
		if err != nil {
			continue // removed meanwhile
		}
		ev.ContainersStatuses = append(ev.ContainersStatuses, resp.GetStatus())
	}
}
