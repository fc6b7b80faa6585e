package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers serves from the in-memory index.
func (r *runtimeService) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range r.containers.list() {
		c.mu.Lock()
		state := c.status.state()
		c.mu.Unlock()
		if !matchID(f.GetId(), c.meta.ID) || !matchID(f.GetPodSandboxId(), c.meta.SandboxID) ||
			!matchLabels(f.GetLabelSelector(), c.config.GetLabels()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
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
		})
	}
	return resp, nil
}
