package cri

import (
	"context"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages lists every image once per image ID, with all its names; a
// filter keeps only the image its name or ID denotes.
func (s *imageService) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if want := req.GetFilter().GetImage().GetImage(); want != "" {
		names, err := s.namesOf(ctx, want)
		if errdefs.IsNotFound(err) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{s.criImage(names)}}, nil
	}
	all, err := s.images.List(ctx)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, group := range groupByID(all) {
		resp.Images = append(resp.Images, s.criImage(group))
	}
	return resp, nil
}
