package cri

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Stats come from containerd's task metrics (the shim reads the task's
// cgroup, v1 or v2; see stats_cgroup.go), the snapshotter's usage of the
// container's writable snapshot, and the pod's network namespace
// (stats_network.go). A container without a task (created, exited) has
// attributes and its writable layer but no CPU or memory, as in
// containerd's CRI. A pod's CPU, memory and process count are the sums
// over its pause process and its containers.

// statsCache is what stats remember between calls: the previous CPU
// reading per container or sandbox, from which usage_nano_cores is a
// rate, and the snapshotter's root once it is known.
type statsCache struct {
	mu      sync.Mutex
	lastCPU map[string]cpuReading
	fsRoot  string
}

type cpuReading struct {
	total uint64
	at    time.Time
}

// nanoCores is the CPU rate since the previous reading of id, or nil when
// there is none yet or the counter went back (a pod's sum drops when one
// of its containers ends).
func (s *statsCache) nanoCores(id string, total uint64, at time.Time) *uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastCPU == nil {
		s.lastCPU = map[string]cpuReading{}
	}
	prev, ok := s.lastCPU[id]
	if ok && !at.After(prev.at) {
		return nil // same sample seen twice: keep the older baseline
	}
	s.lastCPU[id] = cpuReading{total: total, at: at}
	if !ok || total < prev.total {
		return nil
	}
	rate := uint64(float64(total-prev.total) / float64(at.Sub(prev.at).Nanoseconds()) * float64(time.Second))
	return &rate
}

// forgetExcept drops the readings of IDs that are gone.
func (s *statsCache) forgetExcept(alive func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.lastCPU {
		if !alive(id) {
			delete(s.lastCPU, id)
		}
	}
}

func (r *runtimeService) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("container stats: %w", err)
	}
	samples, err := r.taskSamples(ctx, []string{c.meta.ID})
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", c.meta.ID, err)
	}
	return &runtimeapi.ContainerStatsResponse{Stats: r.containerStats(ctx, c, samples)}, nil
}

func (r *runtimeService) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	stats, err := r.listContainerStats(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: stats}, nil
}

// StreamContainerStats is ListContainerStats in batches.
func (r *runtimeService) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	stats, err := r.listContainerStats(r.streamContext(stream.Context()), req.GetFilter())
	if err != nil {
		return toStatus(err)
	}
	return sendInBatches(stats, func(batch []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: batch})
	})
}

func (r *runtimeService) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	var selected []*container
	var ids []string
	for _, c := range r.containers.list() {
		if !matchID(f.GetId(), c.meta.ID) || !matchID(f.GetPodSandboxId(), c.meta.SandboxID) ||
			!matchLabels(f.GetLabelSelector(), c.config.GetLabels()) {
			continue
		}
		selected = append(selected, c)
		ids = append(ids, c.meta.ID)
	}
	samples, err := r.taskSamples(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list container stats: %w", err)
	}
	stats := make([]*runtimeapi.ContainerStats, 0, len(selected))
	for _, c := range selected {
		stats = append(stats, r.containerStats(ctx, c, samples))
	}
	r.forgetGoneCPUReadings()
	return stats, nil
}

func (r *runtimeService) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod sandbox stats: %w", err)
	}
	containers := r.containersOf(sb.meta.ID)
	ids := []string{sb.meta.ID}
	for _, c := range containers {
		ids = append(ids, c.meta.ID)
	}
	samples, err := r.taskSamples(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("stats of pod sandbox %s: %w", sb.meta.ID, err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: r.podStats(ctx, sb, containers, samples)}, nil
}

func (r *runtimeService) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	stats, err := r.listPodSandboxStats(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: stats}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in batches.
func (r *runtimeService) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	stats, err := r.listPodSandboxStats(r.streamContext(stream.Context()), req.GetFilter())
	if err != nil {
		return toStatus(err)
	}
	return sendInBatches(stats, func(batch []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: batch})
	})
}

// listPodSandboxStats covers ready sandboxes only, as containerd's CRI:
// a stopped pod has nothing running to measure. PodSandboxStats on one
// by ID still answers, with its attributes and containers.
func (r *runtimeService) listPodSandboxStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	byPod := r.containersBySandbox()
	var selected []*sandbox
	var ids []string
	for _, sb := range r.sandboxes.list() {
		sb.mu.Lock()
		ready := sb.status.Ready
		sb.mu.Unlock()
		if !ready || !matchID(f.GetId(), sb.meta.ID) || !matchLabels(f.GetLabelSelector(), sb.config.GetLabels()) {
			continue
		}
		selected = append(selected, sb)
		ids = append(ids, sb.meta.ID)
		for _, c := range byPod[sb.meta.ID] {
			ids = append(ids, c.meta.ID)
		}
	}
	samples, err := r.taskSamples(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list pod sandbox stats: %w", err)
	}
	stats := make([]*runtimeapi.PodSandboxStats, 0, len(selected))
	for _, sb := range selected {
		stats = append(stats, r.podStats(ctx, sb, byPod[sb.meta.ID], samples))
	}
	r.forgetGoneCPUReadings()
	return stats, nil
}

// containersBySandbox groups the containers by pod in one pass.
func (r *runtimeService) containersBySandbox() map[string][]*container {
	out := map[string][]*container{}
	for _, c := range r.containers.list() {
		out[c.meta.SandboxID] = append(out[c.meta.SandboxID], c)
	}
	return out
}

// taskSamples reads the cgroup metrics of the tasks of ids in one call;
// IDs without a task are absent from the result. A metric that cannot be
// decoded is logged and left out rather than failing every other one.
func (r *runtimeService) taskSamples(ctx context.Context, ids []string) (map[string]cgroupSample, error) {
	if len(ids) == 0 {
		return nil, nil // no filter would mean every task in the namespace
	}
	filters := make([]string, len(ids))
	for i, id := range ids {
		filters[i] = "id==" + id
	}
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("task metrics: %w", err)
	}
	out := make(map[string]cgroupSample, len(resp.Metrics))
	for _, m := range resp.Metrics {
		s, err := decodeTaskMetric(m)
		if err != nil {
			log.G(ctx).WithError(err).Warn("skipping task metric")
			continue
		}
		out[m.ID] = s
	}
	return out, nil
}

// containerStats is c's stats with its task's sample, if it has a task.
func (r *runtimeService) containerStats(ctx context.Context, c *container, samples map[string]cgroupSample) *runtimeapi.ContainerStats {
	cs := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          c.meta.ID,
			Metadata:    c.config.GetMetadata(),
			Labels:      c.config.GetLabels(),
			Annotations: c.config.GetAnnotations(),
		},
		WritableLayer: r.writableLayer(ctx, c.meta.ID),
	}
	if s, ok := runningSample(c, samples); ok {
		cs.Cpu = r.cpuUsage(c.meta.ID, s)
		cs.Memory = memoryUsage(s)
		cs.Swap = swapUsage(s)
	}
	return cs
}

// runningSample is c's sample if c is running. An exited container's task
// can still be there for a moment after its exit was recorded (until it is
// deleted), with a last sample that no longer describes anything running.
func runningSample(c *container, samples map[string]cgroupSample) (cgroupSample, bool) {
	s, ok := samples[c.meta.ID]
	if !ok {
		return s, false
	}
	c.mu.Lock()
	state := c.status.state()
	c.mu.Unlock()
	return s, state == runtimeapi.ContainerState_CONTAINER_RUNNING
}

// podStats sums the samples of the pause task and the containers.
func (r *runtimeService) podStats(ctx context.Context, sb *sandbox, containers []*container, samples map[string]cgroupSample) *runtimeapi.PodSandboxStats {
	ps := &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          sb.meta.ID,
			Metadata:    sb.config.GetMetadata(),
			Labels:      sb.config.GetLabels(),
			Annotations: sb.config.GetAnnotations(),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{},
	}
	var total cgroupSample
	measured := false
	if s, ok := samples[sb.meta.ID]; ok {
		total.add(s)
		measured = true
	}
	for _, c := range containers {
		ps.Linux.Containers = append(ps.Linux.Containers, r.containerStats(ctx, c, samples))
		if s, ok := runningSample(c, samples); ok {
			total.add(s)
			measured = true
		}
	}
	if measured {
		ps.Linux.Cpu = r.cpuUsage(sb.meta.ID, total)
		ps.Linux.Memory = memoryUsage(total)
		if total.hasPids {
			ps.Linux.Process = &runtimeapi.ProcessUsage{
				Timestamp:    total.at.UnixNano(),
				ProcessCount: &runtimeapi.UInt64Value{Value: total.pidsCurrent},
			}
		}
	}
	if netnsPath := r.liveNetNS(sb); netnsPath != "" {
		ifaces, err := readInterfaceCounters(netnsPath)
		if err != nil {
			log.G(ctx).WithError(err).WithField("sandbox", sb.meta.ID).Warn("pod network stats")
		} else {
			ps.Linux.Network = networkUsage(ifaces, time.Now())
		}
	}
	return ps
}

// liveNetNS is the sandbox's network namespace while it exists; "" for a
// host-network pod or once the pod is stopped.
func (r *runtimeService) liveNetNS(sb *sandbox) string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.status.Ready || sb.status.NetworkDown {
		return ""
	}
	return sb.meta.NetNSPath
}

func (r *runtimeService) cpuUsage(id string, s cgroupSample) *runtimeapi.CpuUsage {
	if !s.hasCPU {
		return nil
	}
	u := &runtimeapi.CpuUsage{
		Timestamp:            s.at.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: s.cpuTotal},
	}
	if rate := r.stats.nanoCores(id, s.cpuTotal, s.at); rate != nil {
		u.UsageNanoCores = &runtimeapi.UInt64Value{Value: *rate}
	}
	return u
}

func memoryUsage(s cgroupSample) *runtimeapi.MemoryUsage {
	if !s.hasMemory {
		return nil
	}
	m := &runtimeapi.MemoryUsage{
		Timestamp:       s.at.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: s.memWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: s.memUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: s.memRSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: s.pgFault},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: s.pgMajFault},
	}
	// As the kubelet: available is limit less working set, and unset
	// without a limit.
	if s.memLimit != 0 {
		var avail uint64
		if s.memLimit > s.memWorkingSet {
			avail = s.memLimit - s.memWorkingSet
		}
		m.AvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	return m
}

func swapUsage(s cgroupSample) *runtimeapi.SwapUsage {
	if !s.hasSwap {
		return nil
	}
	u := &runtimeapi.SwapUsage{
		Timestamp:      s.at.UnixNano(),
		SwapUsageBytes: &runtimeapi.UInt64Value{Value: s.swapUsage},
	}
	if s.swapLimit != 0 {
		var avail uint64
		if s.swapLimit > s.swapUsage {
			avail = s.swapLimit - s.swapUsage
		}
		u.SwapAvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	return u
}

// writableLayer is the usage of the container's own snapshot (kcrid keys
// it by the container ID). Zero when the snapshotter cannot say.
func (r *runtimeService) writableLayer(ctx context.Context, id string) *runtimeapi.FilesystemUsage {
	snapshotter := r.images.images.Snapshotter()
	fs := &runtimeapi.FilesystemUsage{
		Timestamp:  nowNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: r.snapshotterRoot(ctx)},
		UsedBytes:  &runtimeapi.UInt64Value{},
		InodesUsed: &runtimeapi.UInt64Value{},
	}
	u, err := r.client.SnapshotService(snapshotter).Usage(ctx, id)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("container", id).Debug("writable layer usage")
		}
		return fs
	}
	fs.UsedBytes.Value, fs.InodesUsed.Value = uint64(u.Size), uint64(u.Inodes)
	return fs
}

// snapshotterRoot is where the snapshotter keeps its data, as containerd's
// introspection exports it; the snapshotter's name until that is known.
func (r *runtimeService) snapshotterRoot(ctx context.Context) string {
	r.stats.mu.Lock()
	root := r.stats.fsRoot
	r.stats.mu.Unlock()
	if root != "" {
		return root
	}
	name := r.images.images.Snapshotter()
	resp, err := r.client.IntrospectionService().Plugins(ctx, fmt.Sprintf("type==io.containerd.snapshotter.v1,id==%s", name))
	if err != nil {
		return name
	}
	for _, p := range resp.Plugins {
		if root, ok := p.Exports["root"]; ok && root != "" {
			r.stats.mu.Lock()
			r.stats.fsRoot = root
			r.stats.mu.Unlock()
			return root
		}
	}
	return name
}

// forgetGoneCPUReadings keeps the CPU baselines from outliving their
// containers and sandboxes.
func (r *runtimeService) forgetGoneCPUReadings() {
	r.stats.forgetExcept(func(id string) bool {
		if c, err := r.containers.get(id); err == nil && c.meta.ID == id {
			return true
		}
		sb, err := r.sandboxes.get(id)
		return err == nil && sb.meta.ID == id
	})
}

// streamContext is a streaming RPC's context with the containerd
// namespace, which the unary interceptor adds for the other RPCs.
func (r *runtimeService) streamContext(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// streamBatchSize bounds one streamed message (containerd's CRI uses the
// same order of magnitude).
const streamBatchSize = 500

func sendInBatches[T any](items []T, send func([]T) error) error {
	for start := 0; start < len(items); start += streamBatchSize {
		end := min(start+streamBatchSize, len(items))
		if err := send(items[start:end]); err != nil {
			return err
		}
	}
	return nil
}
