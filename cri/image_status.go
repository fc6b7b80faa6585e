package cri

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageStatus answers with no image (and no error) for an unknown image,
// as the CRI asks.
func (s *imageService) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image status: no image given: %w", errdefs.ErrInvalidArgument)
	}
	names, err := s.namesOf(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: s.criImage(names)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{
			"name":     names[0].Name,
			"target":   names[0].Target,
			"platform": names[0].Platform,
			"config":   names[0].Config,
		})
		if err == nil {
			resp.Info = map[string]string{"info": string(info)}
		}
	}
	return resp, nil
}
