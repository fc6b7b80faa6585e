package cri

import (
	"context"
	"sync"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/network"
)

// runtimeService serves the CRI RuntimeService. It holds the parts it
// works with; each RPC family lives in its own file.
type runtimeService struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	cfg        Config
	client     *containerd.Client
	sandboxes  *index[*sandbox]
	containers *index[*container]
	network    *network.Manager
	images     *imageService
	oom        oomPolicy

	mu      sync.Mutex
	podCIDR string
}

// oomPolicy is the host's limit on oom_score_adj (see containers.OOMScoreAdjFloor).
type oomPolicy struct {
	floor      int
	restricted bool
}

func (p oomPolicy) clamp(v int) int { return containers.ClampOOMScoreAdj(v, p.floor, p.restricted) }

const runcRuntime = "io.containerd.runc.v2"

// runtimeOptions are the runc shim options for every task.
func (r *runtimeService) runtimeOptions() *options.Options {
	return &options.Options{Root: r.cfg.Runtime.Root, BinaryName: r.cfg.Runtime.BinaryName}
}

// Streaming, stats, events and checkpointing are issue 6 and later.

func (r *runtimeService) Exec(context.Context, *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, unimplemented("Exec", "streaming exec comes with the streaming server (issue 6); use ExecSync")
}

func (r *runtimeService) Attach(context.Context, *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, unimplemented("Attach", "streaming comes with the streaming server (issue 6)")
}

func (r *runtimeService) PortForward(context.Context, *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, unimplemented("PortForward", "streaming comes with the streaming server (issue 6)")
}

func (r *runtimeService) ContainerStats(context.Context, *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	return nil, unimplemented("ContainerStats", "stats are issue 6")
}

func (r *runtimeService) ListContainerStats(context.Context, *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	return nil, unimplemented("ListContainerStats", "stats are issue 6")
}

func (r *runtimeService) PodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	return nil, unimplemented("PodSandboxStats", "stats are issue 6")
}

func (r *runtimeService) ListPodSandboxStats(context.Context, *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return nil, unimplemented("ListPodSandboxStats", "stats are issue 6")
}

func (r *runtimeService) GetContainerEvents(*runtimeapi.GetEventsRequest, runtimeapi.RuntimeService_GetContainerEventsServer) error {
	return unimplemented("GetContainerEvents", "the CRI event stream is issue 6")
}

func (r *runtimeService) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, unimplemented("CheckpointContainer", "checkpointing is not planned yet")
}

func (r *runtimeService) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return nil, unimplemented("ListMetricDescriptors", "metrics are issue 6")
}

func (r *runtimeService) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return nil, unimplemented("ListPodSandboxMetrics", "metrics are issue 6")
}
