package cri

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func event(id string, typ runtimeapi.ContainerEventType) *runtimeapi.ContainerEventResponse {
	return &runtimeapi.ContainerEventResponse{ContainerId: id, ContainerEventType: typ}
}

// A subscriber that stops reading is dropped with ResourceExhausted once
// its buffer is full; publishing never waits for it, and others go on.
func TestEventBroadcasterDropsASlowSubscriber(t *testing.T) {
	var b eventBroadcaster
	ctx := context.Background()
	slow, cancelSlow := b.subscribe()
	defer cancelSlow()
	fast, cancelFast := b.subscribe()
	defer cancelFast()
	for i := 0; i <= eventBufferSize; i++ {
		// Distinct IDs: every event is a new container's CREATED.
		b.publish(ctx, event(string(rune('a'+i%26))+string(rune(i)), runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT))
		if i%16 == 0 {
			for len(fast.events) > 0 {
				<-fast.events
			}
		}
	}
	select {
	case <-slow.done:
	default:
		t.Fatal("the slow subscriber is still subscribed")
	}
	if status.Code(slow.err) != codes.ResourceExhausted {
		t.Errorf("slow subscriber ended with %v", slow.err)
	}
	select {
	case <-fast.done:
		t.Fatal("the subscriber that kept up was dropped")
	default:
	}
	if !b.subscribed() {
		t.Error("no subscriber left")
	}
	b.close()
	<-fast.done
	if status.Code(fast.err) != codes.Unavailable {
		t.Errorf("after close: %v", fast.err)
	}
	late, _ := b.subscribe()
	<-late.done // subscribing after close ends at once
}

// Events racing each other reach subscribers in lifecycle order.
func TestEventBroadcasterKeepsLifecycleOrder(t *testing.T) {
	var b eventBroadcaster
	ctx := context.Background()
	sub, cancel := b.subscribe()
	defer cancel()
	const (
		created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	// A container whose exit was recorded before its start: STARTED is
	// sent before STOPPED, and the late STARTED is dropped.
	b.publish(ctx, event("c", created))
	b.publish(ctx, event("c", stopped))
	b.publish(ctx, event("c", started))
	b.publish(ctx, event("c", deleted))
	// A container kcrid found running after a restart: STOPPED alone.
	b.publish(ctx, event("r", stopped))
	var got []string
	for len(sub.events) > 0 {
		ev := <-sub.events
		got = append(got, ev.ContainerId+":"+ev.ContainerEventType.String())
	}
	want := []string{
		"c:CONTAINER_CREATED_EVENT", "c:CONTAINER_STARTED_EVENT", "c:CONTAINER_STOPPED_EVENT", "c:CONTAINER_DELETED_EVENT",
		"r:CONTAINER_STOPPED_EVENT",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if len(b.phase) != 1 { // "c" is forgotten once deleted
		t.Errorf("phases kept: %v", b.phase)
	}
}
