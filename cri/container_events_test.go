package cri_test

import (
	"bytes"
	"context"
	"runtime/pprof"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// subscriber reads one GetContainerEvents stream into a channel.
type subscriber struct {
	events chan *runtimeapi.ContainerEventResponse
	cancel context.CancelFunc
}

func subscribe(t *testing.T, e *env) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	stream, err := rawClient(t, e).GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &subscriber{events: make(chan *runtimeapi.ContainerEventResponse, 100), cancel: cancel}
	go func() {
		defer close(s.events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			s.events <- ev
		}
	}()
	t.Cleanup(cancel)
	return s
}

// TestContainerEvents: two subscribers see a pod and a container that
// exits by itself go through CREATED, STARTED, STOPPED and DELETED, in
// order, with the pod's status and its containers' statuses; a cancelled
// subscriber leaves no stream behind on the server.
func TestContainerEvents(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	streamsBefore := eventStreams()
	subs := []*subscriber{subscribe(t, e), subscribe(t, e)}
	waitFor(t, "both event streams on the server", func() bool { return eventStreams() == streamsBefore+2 })

	podCfg := hostNetworkPod(t, "events")
	pod := e.runPod(podCfg)
	ctr := e.startContainer(pod, podCfg, containerConfig("quick", "true"))
	e.waitState(ctr, runtimeapi.ContainerState_CONTAINER_EXITED)
	if err := e.rs.RemoveContainer(e.ctx, ctr); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}

	lifecycle := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	for i, sub := range subs {
		// Per ID, the stream is in lifecycle order; read the two IDs from
		// separate copies so their interleaving does not matter.
		var all []*runtimeapi.ContainerEventResponse
		for len(all) < 2*len(lifecycle) {
			ev, ok := <-sub.events
			if !ok {
				t.Fatalf("subscriber %d: stream ended after %d events", i, len(all))
			}
			if ev.GetContainerId() == pod || ev.GetContainerId() == ctr {
				all = append(all, ev)
			}
		}
		for _, id := range []string{pod, ctr} {
			var got []runtimeapi.ContainerEventType
			var evs []*runtimeapi.ContainerEventResponse
			for _, ev := range all {
				if ev.GetContainerId() == id {
					got = append(got, ev.GetContainerEventType())
					evs = append(evs, ev)
				}
			}
			if !slices.Equal(got, lifecycle) {
				t.Fatalf("subscriber %d: events of %s: %v, want %v", i, id, got, lifecycle)
			}
			checkEventStatuses(t, id, pod, ctr, evs)
		}
	}

	// Cancelled streams end on the server too.
	subs[0].cancel()
	waitFor(t, "the cancelled stream to end on the server", func() bool { return eventStreams() == streamsBefore+1 })
	subs[1].cancel()
	waitFor(t, "no event stream left on the server", func() bool { return eventStreams() == streamsBefore })
}

// checkEventStatuses: every event but a pod's DELETED carries the pod
// status; the container's STOPPED lists it as exited.
func checkEventStatuses(t *testing.T, id, pod, ctr string, evs []*runtimeapi.ContainerEventResponse) {
	t.Helper()
	for _, ev := range evs {
		typ := ev.GetContainerEventType()
		if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT && id == pod {
			if ev.GetPodSandboxStatus() != nil {
				t.Errorf("DELETED of the pod carries a status: %v", ev.GetPodSandboxStatus())
			}
			continue
		}
		if ev.GetPodSandboxStatus().GetId() != pod || ev.GetCreatedAt() == 0 {
			t.Errorf("%s of %s: pod status %v, created at %d", typ, id, ev.GetPodSandboxStatus(), ev.GetCreatedAt())
		}
	}
	if id != ctr {
		return
	}
	stopped := evs[2]
	i := slices.IndexFunc(stopped.GetContainersStatuses(), func(s *runtimeapi.ContainerStatus) bool { return s.GetId() == ctr })
	if i < 0 || stopped.GetContainersStatuses()[i].GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("STOPPED of the container: statuses %v", stopped.GetContainersStatuses())
	}
	if len(evs[3].GetContainersStatuses()) != 0 {
		t.Errorf("DELETED of the container still lists it: %v", evs[3].GetContainersStatuses())
	}
}

// eventStreams counts the goroutines serving GetContainerEvents in this
// process (the test runs kcrid in-process).
func eventStreams() int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	return bytes.Count(buf.Bytes(), []byte("cri.(*runtimeService).GetContainerEvents("))
}
