package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandboxMetrics serves cadvisor-named metrics, so a kubelet with
// PodAndContainerStatsFromCRI can export them in place of cadvisor's. They
// come from the same readings as the stats (stats.go): the tasks' cgroups,
// the pod's network namespace, the writable snapshot and the filesystem
// under the snapshotter, /proc for descriptors and threads, and the OCI
// spec for the configured limits. Only metrics kcrid can produce are
// described; a container without a running task has none.

// metricDef describes one metric family: its CRI descriptor and type.
type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extraKeys  []string // label keys after the base ones
}

// baseLabelKeys label every metric; the values for a pod-level metric
// leave container and image empty and use the sandbox ID as id.
var baseLabelKeys = []string{"pod", "namespace", "container", "id", "image"}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// The families, named and described as cadvisor does.
var (
	mCPUUsage         = metricDef{"container_cpu_usage_seconds_total", "Cumulative CPU time consumed in seconds.", counter, nil}
	mCPUUser          = metricDef{"container_cpu_user_seconds_total", "Cumulative user CPU time consumed in seconds.", counter, nil}
	mCPUSystem        = metricDef{"container_cpu_system_seconds_total", "Cumulative system CPU time consumed in seconds.", counter, nil}
	mCFSPeriods       = metricDef{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil}
	mCFSThrottled     = metricDef{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil}
	mCFSThrottledTime = metricDef{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil}
	mMemCache         = metricDef{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil}
	mMemRSS           = metricDef{"container_memory_rss", "Size of RSS in bytes.", gauge, nil}
	mMemKernel        = metricDef{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil}
	mMemMapped        = metricDef{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil}
	mMemSwap          = metricDef{"container_memory_swap", "Container swap usage in bytes.", gauge, nil}
	mMemFailcnt       = metricDef{"container_memory_failcnt", "Number of memory usage hits limits (cgroup v1; 0 on v2).", counter, nil}
	mMemUsage         = metricDef{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil}
	mMemMaxUsage      = metricDef{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil}
	mMemWorkingSet    = metricDef{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil}
	mMemFailures      = metricDef{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"}}
	mOOMEvents        = metricDef{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil}
	mNetRxBytes       = metricDef{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"}}
	mNetRxPackets     = metricDef{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"}}
	mNetRxDropped     = metricDef{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"}}
	mNetRxErrors      = metricDef{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"}}
	mNetTxBytes       = metricDef{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"}}
	mNetTxPackets     = metricDef{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"}}
	mNetTxDropped     = metricDef{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"}}
	mNetTxErrors      = metricDef{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"}}
	mFsInodesFree     = metricDef{"container_fs_inodes_free", "Number of available inodes.", gauge, []string{"device"}}
	mFsInodesTotal    = metricDef{"container_fs_inodes_total", "Number of inodes.", gauge, []string{"device"}}
	mFsLimit          = metricDef{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"}}
	mFsUsage          = metricDef{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"}}
	mFsReadBytes      = metricDef{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"}}
	mFsReads          = metricDef{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"}}
	mFsWriteBytes     = metricDef{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"}}
	mFsWrites         = metricDef{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"}}
	mBlkioUsage       = metricDef{"container_blkio_device_usage_total", "Blkio device bytes usage.", counter, []string{"device", "major", "minor", "operation"}}
	mProcesses        = metricDef{"container_processes", "Number of processes running inside the container.", gauge, nil}
	mThreads          = metricDef{"container_threads", "Number of threads running inside the container.", gauge, nil}
	mThreadsMax       = metricDef{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", gauge, nil}
	mFileDescriptors  = metricDef{"container_file_descriptors", "Number of open file descriptors for the container.", gauge, nil}
	mSockets          = metricDef{"container_sockets", "Number of open sockets for the container.", gauge, nil}
	mLastSeen         = metricDef{"container_last_seen", "Last time a container was seen by the exporter.", gauge, nil}
	mStartTime        = metricDef{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil}
	mSpecCPUPeriod    = metricDef{"container_spec_cpu_period", "CPU period of the container.", gauge, nil}
	mSpecCPUQuota     = metricDef{"container_spec_cpu_quota", "CPU quota of the container.", gauge, nil}
	mSpecCPUShares    = metricDef{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil}
	mSpecMemLimit     = metricDef{"container_spec_memory_limit_bytes", "Memory limit for the container.", gauge, nil}
	mSpecMemSwapLimit = metricDef{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", gauge, nil}
	mSpecMemReserve   = metricDef{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", gauge, nil}
	allMetricFamilies = []metricDef{
		mCPUUsage, mCPUUser, mCPUSystem, mCFSPeriods, mCFSThrottled, mCFSThrottledTime,
		mMemCache, mMemRSS, mMemKernel, mMemMapped, mMemSwap, mMemFailcnt, mMemUsage, mMemMaxUsage, mMemWorkingSet, mMemFailures, mOOMEvents,
		mNetRxBytes, mNetRxPackets, mNetRxDropped, mNetRxErrors, mNetTxBytes, mNetTxPackets, mNetTxDropped, mNetTxErrors,
		mFsInodesFree, mFsInodesTotal, mFsLimit, mFsUsage, mFsReadBytes, mFsReads, mFsWriteBytes, mFsWrites, mBlkioUsage,
		mProcesses, mThreads, mThreadsMax, mFileDescriptors, mSockets,
		mLastSeen, mStartTime,
		mSpecCPUPeriod, mSpecCPUQuota, mSpecCPUShares, mSpecMemLimit, mSpecMemSwapLimit, mSpecMemReserve,
	}
)

func (r *runtimeService) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, d := range allMetricFamilies {
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{
			Name:      d.name,
			Help:      d.help,
			LabelKeys: append(append([]string(nil), baseLabelKeys...), d.extraKeys...),
		})
	}
	return resp, nil
}

func (r *runtimeService) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	metrics, err := r.listPodSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: metrics}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches.
func (r *runtimeService) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	metrics, err := r.listPodSandboxMetrics(r.streamContext(stream.Context()))
	if err != nil {
		return toStatus(err)
	}
	return sendInBatches(metrics, func(batch []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: batch})
	})
}

// listPodSandboxMetrics covers the ready sandboxes and their running
// containers. What cannot be read for one container is logged and left
// out; it does not fail the others.
func (r *runtimeService) listPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	byPod := r.containersBySandbox()
	var pods []*sandbox
	var ids []string
	for _, sb := range r.sandboxes.list() {
		sb.mu.Lock()
		ready := sb.status.Ready
		sb.mu.Unlock()
		if !ready {
			continue
		}
		pods = append(pods, sb)
		for _, c := range byPod[sb.meta.ID] {
			ids = append(ids, c.meta.ID)
		}
	}
	samples, err := r.taskSamples(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("list pod sandbox metrics: %w", err)
	}
	fs := r.snapshotFilesystem(ctx)
	out := make([]*runtimeapi.PodSandboxMetrics, 0, len(pods))
	for _, sb := range pods {
		md := sb.config.GetMetadata()
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.meta.ID}
		podLabels := newMetricSet(md.GetName(), md.GetNamespace(), "", sb.meta.ID, "")
		if netnsPath := r.liveNetNS(sb); netnsPath != "" {
			ifaces, err := readInterfaceCounters(netnsPath)
			if err != nil {
				log.G(ctx).WithError(err).WithField("sandbox", sb.meta.ID).Warn("pod network metrics")
			}
			for _, c := range ifaces {
				podLabels.add(mNetRxBytes, c.rxBytes, c.name)
				podLabels.add(mNetRxPackets, c.rxPackets, c.name)
				podLabels.add(mNetRxDropped, c.rxDropped, c.name)
				podLabels.add(mNetRxErrors, c.rxErrors, c.name)
				podLabels.add(mNetTxBytes, c.txBytes, c.name)
				podLabels.add(mNetTxPackets, c.txPackets, c.name)
				podLabels.add(mNetTxDropped, c.txDropped, c.name)
				podLabels.add(mNetTxErrors, c.txErrors, c.name)
			}
		}
		pm.Metrics = podLabels.metrics
		for _, c := range byPod[sb.meta.ID] {
			s, running := samples[c.meta.ID]
			if !running {
				continue
			}
			ms := newMetricSet(md.GetName(), md.GetNamespace(), c.config.GetMetadata().GetName(), c.meta.ID, c.meta.ImageName)
			r.addContainerMetrics(ctx, ms, c, s, fs)
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{ContainerId: c.meta.ID, Metrics: ms.metrics})
		}
		out = append(out, pm)
	}
	return out, nil
}

// metricSet collects metrics that share the base label values.
type metricSet struct {
	at      int64
	labels  []string
	metrics []*runtimeapi.Metric
}

func newMetricSet(labelValues ...string) *metricSet {
	return &metricSet{at: nowNano(), labels: labelValues}
}

func (m *metricSet) add(d metricDef, v uint64, extraLabels ...string) {
	m.metrics = append(m.metrics, &runtimeapi.Metric{
		Name:        d.name,
		Timestamp:   m.at,
		MetricType:  d.typ,
		LabelValues: append(append([]string(nil), m.labels...), extraLabels...),
		Value:       &runtimeapi.UInt64Value{Value: v},
	})
}

// seconds turns a nanosecond counter into the whole seconds a uint64
// metric can carry.
func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }

// addContainerMetrics adds a running container's metrics from its sample
// and what only the host can tell (processes, files, the spec).
func (r *runtimeService) addContainerMetrics(ctx context.Context, m *metricSet, c *container, s cgroupSample, fs snapshotFS) {
	if s.hasCPU {
		m.add(mCPUUsage, seconds(s.cpuTotal))
		m.add(mCPUUser, seconds(s.cpuUser))
		m.add(mCPUSystem, seconds(s.cpuSystem))
		m.add(mCFSPeriods, s.cfsPeriods)
		m.add(mCFSThrottled, s.cfsThrottledPeriods)
		m.add(mCFSThrottledTime, seconds(s.cfsThrottledTime))
	}
	if s.hasMemory {
		m.add(mMemCache, s.memCache)
		m.add(mMemRSS, s.memRSS)
		m.add(mMemKernel, s.memKernel)
		m.add(mMemMapped, s.memMappedFile)
		m.add(mMemSwap, s.swapUsage)
		m.add(mMemFailcnt, s.memFailcnt)
		m.add(mMemUsage, s.memUsage)
		m.add(mMemMaxUsage, s.memMaxUsage)
		m.add(mMemWorkingSet, s.memWorkingSet)
		m.add(mMemFailures, s.pgFault, "pgfault", "container")
		m.add(mMemFailures, s.pgMajFault, "pgmajfault", "container")
	}
	if s.hasOOMKills {
		m.add(mOOMEvents, s.oomKills)
	}
	for _, b := range s.blockIO {
		m.add(mFsReadBytes, b.readBytes, b.device)
		m.add(mFsReads, b.readOps, b.device)
		m.add(mFsWriteBytes, b.writeBytes, b.device)
		m.add(mFsWrites, b.writeOps, b.device)
		major, minor := strconv.FormatUint(b.major, 10), strconv.FormatUint(b.minor, 10)
		m.add(mBlkioUsage, b.readBytes, b.device, major, minor, "Read")
		m.add(mBlkioUsage, b.writeBytes, b.device, major, minor, "Write")
	}
	if fs.ok {
		layer := r.writableLayer(ctx, c.meta.ID)
		m.add(mFsUsage, layer.GetUsedBytes().GetValue(), fs.root)
		m.add(mFsLimit, fs.sizeBytes, fs.root)
		m.add(mFsInodesTotal, fs.inodes, fs.root)
		m.add(mFsInodesFree, fs.inodesFree, fs.root)
	}
	if s.hasPids {
		m.add(mThreads, s.pidsCurrent) // the pids controller counts tasks, i.e. threads
		m.add(mThreadsMax, s.pidsLimit)
	}
	ctr, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil || task == nil {
		return // exited since the sample
	}
	if procs, err := task.Pids(ctx); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Debug("container processes")
	} else {
		fds, sockets := 0, 0
		for _, p := range procs {
			f, s := countDescriptors(p.Pid)
			fds += f
			sockets += s
		}
		m.add(mProcesses, uint64(len(procs)))
		m.add(mFileDescriptors, uint64(fds))
		m.add(mSockets, uint64(sockets))
	}
	c.mu.Lock()
	startedAt := c.status.StartedAt
	c.mu.Unlock()
	m.add(mLastSeen, uint64(time.Now().Unix()))
	m.add(mStartTime, uint64(startedAt/int64(time.Second)))
	if spec, err := ctr.Spec(ctx); err == nil {
		addSpecMetrics(m, spec)
	}
}

// addSpecMetrics reports the limits the container was given (after any
// UpdateContainerResources, which rewrites the stored spec).
func addSpecMetrics(m *metricSet, spec *specs.Spec) {
	if spec.Linux == nil || spec.Linux.Resources == nil {
		return
	}
	if cpu := spec.Linux.Resources.CPU; cpu != nil {
		if cpu.Period != nil {
			m.add(mSpecCPUPeriod, *cpu.Period)
		}
		if cpu.Quota != nil && *cpu.Quota > 0 {
			m.add(mSpecCPUQuota, uint64(*cpu.Quota))
		}
		if cpu.Shares != nil {
			m.add(mSpecCPUShares, *cpu.Shares)
		}
	}
	if mem := spec.Linux.Resources.Memory; mem != nil {
		if mem.Limit != nil && *mem.Limit > 0 {
			m.add(mSpecMemLimit, uint64(*mem.Limit))
		}
		if mem.Swap != nil && *mem.Swap > 0 {
			m.add(mSpecMemSwapLimit, uint64(*mem.Swap))
		}
		if mem.Reservation != nil && *mem.Reservation > 0 {
			m.add(mSpecMemReserve, uint64(*mem.Reservation))
		}
	}
}

// countDescriptors counts a process's open files and, among them,
// sockets. A process that is gone counts nothing.
func countDescriptors(pid uint32) (fds, sockets int) {
	dir := filepath.Join("/proc", strconv.FormatUint(uint64(pid), 10), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		fds++
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return fds, sockets
}

// snapshotFS is the filesystem holding the snapshotter's data, where
// writable layers live.
type snapshotFS struct {
	ok                 bool
	root               string
	sizeBytes          uint64
	inodes, inodesFree uint64
}

func (r *runtimeService) snapshotFilesystem(ctx context.Context) snapshotFS {
	root := r.snapshotterRoot(ctx)
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		log.G(ctx).WithError(err).WithField("root", root).Debug("statfs of the snapshotter root")
		return snapshotFS{}
	}
	return snapshotFS{ok: true, root: root, sizeBytes: st.Blocks * uint64(st.Bsize), inodes: st.Files, inodesFree: st.Ffree}
}
