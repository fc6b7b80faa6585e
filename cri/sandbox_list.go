package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox serves from the in-memory index.
func (r *runtimeService) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range r.sandboxes.list() {
		sb.mu.Lock()
		state := sandboxState(sb.status.Ready)
		sb.mu.Unlock()
		if !matchID(f.GetId(), sb.meta.ID) || !matchLabels(f.GetLabelSelector(), sb.config.GetLabels()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id:             sb.meta.ID,
			Metadata:       sb.config.GetMetadata(),
			State:          state,
			CreatedAt:      sb.meta.CreatedAt,
			Labels:         sb.config.GetLabels(),
			Annotations:    sb.config.GetAnnotations(),
			RuntimeHandler: sb.meta.RuntimeHandler,
		})
	}
	return resp, nil
}
