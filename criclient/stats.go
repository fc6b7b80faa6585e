package criclient

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StatsFilter selects containers or pods for stats and statsp.
type StatsFilter struct {
	ID     string
	PodID  string
	Labels map[string]string
}

// ContainerStats returns one sample of container stats, sorted by ID.
func (c *Client) ContainerStats(ctx context.Context, f StatsFilter) ([]*runtimeapi.ContainerStats, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{
		Id: f.ID, PodSandboxId: f.PodID, LabelSelector: f.Labels,
	}})
	if err != nil {
		return nil, fmt.Errorf("container stats: %w", rpcErr(err))
	}
	s := r.GetStats()
	slices.SortFunc(s, func(a, b *runtimeapi.ContainerStats) int {
		return cmp.Compare(a.GetAttributes().GetId(), b.GetAttributes().GetId())
	})
	return s, nil
}

// PodStats returns one sample of pod stats, sorted by ID.
func (c *Client) PodStats(ctx context.Context, f StatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.Runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{
		Id: f.ID, LabelSelector: f.Labels,
	}})
	if err != nil {
		return nil, fmt.Errorf("pod stats: %w", rpcErr(err))
	}
	s := r.GetStats()
	slices.SortFunc(s, func(a, b *runtimeapi.PodSandboxStats) int {
		return cmp.Compare(a.GetAttributes().GetId(), b.GetAttributes().GetId())
	})
	return s, nil
}

// cpuPercent is the CPU use between two cumulative samples.
func cpuPercent(oldUsage, oldTS, usage, ts int64) float64 {
	if usage == 0 || ts <= oldTS {
		return 0
	}
	return float64(usage-oldUsage) / float64(ts-oldTS) * 100
}

// WriteContainerStats writes crictl's stats table from two samples; a
// container missing from the first sample is left out, and so is a
// stopped one (no CPU, no memory) unless all.
func WriteContainerStats(w io.Writer, old, cur []*runtimeapi.ContainerStats, all bool) error {
	prev := map[string]*runtimeapi.ContainerStats{}
	for _, s := range old {
		prev[s.GetAttributes().GetId()] = s
	}
	tw := newTable(w)
	row(tw, "CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES", "SWAP")
	for _, s := range cur {
		cpu, mem := s.GetCpu().GetUsageCoreNanoSeconds().GetValue(), s.GetMemory().GetWorkingSetBytes().GetValue()
		if !all && cpu == 0 && mem == 0 {
			continue
		}
		o, ok := prev[s.GetAttributes().GetId()]
		if !ok {
			continue
		}
		pct := cpuPercent(int64(o.GetCpu().GetUsageCoreNanoSeconds().GetValue()), o.GetCpu().GetTimestamp(), int64(cpu), s.GetCpu().GetTimestamp())
		row(tw, TruncID(s.GetAttributes().GetId(), ""), s.GetAttributes().GetMetadata().GetName(),
			fmt.Sprintf("%.2f", pct), humanSize4(float64(mem)),
			humanSize4(float64(s.GetWritableLayer().GetUsedBytes().GetValue())),
			strconv.FormatUint(s.GetWritableLayer().GetInodesUsed().GetValue(), 10),
			humanSize4(float64(s.GetSwap().GetSwapUsageBytes().GetValue())))
	}
	return tw.Flush()
}

// WritePodStats writes crictl's statsp table from two samples.
func WritePodStats(w io.Writer, old, cur []*runtimeapi.PodSandboxStats) error {
	prev := map[string]*runtimeapi.PodSandboxStats{}
	for _, s := range old {
		prev[s.GetAttributes().GetId()] = s
	}
	tw := newTable(w)
	row(tw, "POD", "POD ID", "CPU %", "MEM")
	for _, s := range cur {
		o, ok := prev[s.GetAttributes().GetId()]
		if !ok {
			continue
		}
		lc, olc := s.GetLinux().GetCpu(), o.GetLinux().GetCpu()
		pct := cpuPercent(int64(olc.GetUsageCoreNanoSeconds().GetValue()), olc.GetTimestamp(), int64(lc.GetUsageCoreNanoSeconds().GetValue()), lc.GetTimestamp())
		row(tw, s.GetAttributes().GetMetadata().GetName(), TruncID(s.GetAttributes().GetId(), ""),
			fmt.Sprintf("%.2f", pct), humanSize4(float64(s.GetLinux().GetMemory().GetWorkingSetBytes().GetValue())))
	}
	return tw.Flush()
}

// UpdateOptions are crictl update's resource switches; zero values are
// left unset.
type UpdateOptions struct {
	CPUPeriod, CPUQuota, CPUShares, Memory int64
	CPUSetCPUs, CPUSetMems                 string
}

// UpdateContainer changes a container's Linux resources.
func (c *Client) UpdateContainer(ctx context.Context, id string, o UpdateOptions) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: id,
		Linux: &runtimeapi.LinuxContainerResources{
			CpuPeriod: o.CPUPeriod, CpuQuota: o.CPUQuota, CpuShares: o.CPUShares, MemoryLimitInBytes: o.Memory,
			CpusetCpus: o.CPUSetCPUs, CpusetMems: o.CPUSetMems,
		},
	})
	if err != nil {
		return fmt.Errorf("update container %q: %w", id, rpcErr(err))
	}
	return nil
}

// Events streams container events to fn until ctx ends or the runtime
// closes the stream.
func (c *Client) Events(ctx context.Context, fn func(*runtimeapi.ContainerEventResponse) error) error {
	st, err := c.Runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return fmt.Errorf("container events: %w", rpcErr(err))
	}
	for {
		ev, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil || err == io.EOF {
				return nil
			}
			return fmt.Errorf("container events: %w", rpcErr(err))
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}
