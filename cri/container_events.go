package cri

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI event stream is issue 6.

func (r *runtimeService) GetContainerEvents(*runtimeapi.GetEventsRequest, runtimeapi.RuntimeService_GetContainerEventsServer) error {
	return unimplemented("GetContainerEvents", "the CRI event stream is issue 6")
}
