package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Streaming (Exec, Attach, PortForward) is issue 6.

func (r *runtimeService) Exec(context.Context, *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, unimplemented("Exec", "streaming exec comes with the streaming server (issue 6); use ExecSync")
}

func (r *runtimeService) Attach(context.Context, *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, unimplemented("Attach", "streaming comes with the streaming server (issue 6)")
}

func (r *runtimeService) PortForward(context.Context, *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, unimplemented("PortForward", "streaming comes with the streaming server (issue 6)")
}
