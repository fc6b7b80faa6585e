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
	creations  *creationLease // creation_lease.go
	// pauseRootfs keeps removed pods' pause rootfs snapshots for the next
	// pods (sandbox_rootfs_pool.go); loaded with the recovered index.
	pauseRootfs *pauseRootfsPool

	mu      sync.Mutex
	podCIDR string

	// background counts writes that finish after their RPC returned;
	// Stop waits for them before the client closes.
	background sync.WaitGroup

	stats  statsCache       // stats.go
	events eventBroadcaster // container_events.go

	streams *streamServer // streaming_server.go

	nri *nriHooks // nri.go; nil when NRI is off

	userns *usernsSupport // userns.go; probed once at startup
	// recursiveReadOnly: CRI mounts may be recursively read-only
	// (runtime_features.go); probed once at startup.
	recursiveReadOnly bool
	// sandboxRecords: containerd keeps sandbox records (2.x), which pods
	// get (sandbox_record.go); probed once at startup.
	sandboxRecords bool
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

// CheckpointContainer is not offered: checkpointing needs CRIU, which
// this runtime does not drive.
func (r *runtimeService) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, unimplemented("CheckpointContainer", "checkpointing is not planned yet")
}
