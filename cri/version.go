package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version is kcrid's version, reported by the Version RPC.
var Version = "0.1.0-dev"

const runtimeName = "kcrid"

func (r *runtimeService) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       runtimeName,
		RuntimeVersion:    Version,
		RuntimeApiVersion: "v1",
	}, nil
}
