package cri

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers serves from the in-memory index.
//
// A kubelet lists every container every second, and encoding hundreds of
// entries is most of the call's cost. Everything in an entry but the state
// is fixed at creation, so each container keeps its entry encoded for its
// current state, and the response is those encodings concatenated as the
// repeated field's wire form: carried as the message's unknown fields,
// which proto writes out verbatim, so the client decodes ordinary
// Containers. (In-process callers therefore see an empty Containers
// slice; everything in kcrid reads the index instead.)
func (r *runtimeService) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	var wire []byte
	for _, c := range r.containers.list() {
		if !matchID(f.GetId(), c.meta.ID) || !matchID(f.GetPodSandboxId(), c.meta.SandboxID) ||
			!matchLabels(f.GetLabelSelector(), c.config.GetLabels()) {
			continue
		}
		c.mu.Lock()
		state := c.status.state()
		if f.GetState() != nil && f.GetState().GetState() != state {
			c.mu.Unlock()
			continue
		}
		entry, err := c.listEntryLocked(state)
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		wire = protowire.AppendTag(wire, containersField, protowire.BytesType)
		wire = protowire.AppendBytes(wire, entry)
	}
	resp := &runtimeapi.ListContainersResponse{}
	resp.ProtoReflect().SetUnknown(wire)
	return resp, nil
}

// containersField is the field number of ListContainersResponse.containers.
var containersField = (&runtimeapi.ListContainersResponse{}).ProtoReflect().Descriptor().Fields().ByName("containers").Number()

// listedContainer is a container's encoded ListContainers entry.
type listedContainer struct {
	state   runtimeapi.ContainerState
	encoded []byte
}

// listEntryLocked returns c's entry encoded for state; c.mu is held.
func (c *container) listEntryLocked(state runtimeapi.ContainerState) ([]byte, error) {
	if c.listed.encoded != nil && c.listed.state == state {
		return c.listed.encoded, nil
	}
	encoded, err := proto.Marshal(c.criContainer(state))
	if err != nil {
		return nil, fmt.Errorf("list containers: encode %s: %w", c.meta.ID, err)
	}
	c.listed = listedContainer{state: state, encoded: encoded}
	return encoded, nil
}

// criContainer is c's ListContainers entry.
func (c *container) criContainer(state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id:           c.meta.ID,
		PodSandboxId: c.meta.SandboxID,
		Metadata:     c.config.GetMetadata(),
		Image:        &runtimeapi.ImageSpec{Image: c.meta.ImageName},
		ImageRef:     c.meta.ImageRef,
		ImageId:      c.meta.ImageID,
		State:        state,
		CreatedAt:    c.meta.CreatedAt,
		Labels:       c.config.GetLabels(),
		Annotations:  c.config.GetAnnotations(),
	}
}
