package cri

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers hands out pre-encoded entries; what a client decodes must
// be exactly the entries built the ordinary way, filters and state changes
// included.
func TestListContainersWireForm(t *testing.T) {
	r := &runtimeService{containers: newIndex[*container]("container")}
	var all []*container
	for i := range 3 {
		c := &container{
			meta: containerMeta{ID: fmt.Sprintf("%064d", i), SandboxID: "pod" + fmt.Sprint(i%2),
				ImageName: "docker.io/library/busybox:1.36", ImageID: "sha256:abc", CreatedAt: int64(i)},
			config: &runtimeapi.ContainerConfig{
				Metadata:    &runtimeapi.ContainerMetadata{Name: fmt.Sprint("c", i)},
				Labels:      map[string]string{"app": fmt.Sprint("a", i%2)},
				Annotations: map[string]string{"note": "x"},
			},
		}
		r.containers.add(c.meta.ID, c)
		all = append(all, c)
	}
	list := func(f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
		t.Helper()
		resp, err := r.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		wire, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var decoded runtimeapi.ListContainersResponse
		if err := proto.Unmarshal(wire, &decoded); err != nil {
			t.Fatal(err)
		}
		return decoded.Containers
	}
	expect := func(got []*runtimeapi.Container, want ...*container) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d containers, want %d", len(got), len(want))
		}
		for i, c := range want {
			c.mu.Lock()
			w := c.criContainer(c.status.state())
			c.mu.Unlock()
			if !proto.Equal(got[i], w) {
				t.Errorf("entry %d:\n got %v\nwant %v", i, got[i], w)
			}
		}
	}
	expect(list(nil), all...)
	expect(list(&runtimeapi.ContainerFilter{PodSandboxId: "pod1"}), all[1])
	expect(list(&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "a0"}}), all[0], all[2])

	all[2].mu.Lock()
	all[2].status.StartedAt = 1
	all[2].mu.Unlock()
	running := list(&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}})
	expect(running, all[2])
	if running[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("a started container is listed as %s", running[0].State)
	}
}
