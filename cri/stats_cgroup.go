package cri

import (
	"fmt"
	"time"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
)

// cgroupSample is one reading of a task's cgroup, whichever cgroup version
// the shim reported it in. Stats (stats.go) and metrics (metrics.go) are
// both built from it, so the two never disagree about what a number means.
type cgroupSample struct {
	at time.Time

	hasCPU                          bool
	cpuTotal, cpuUser, cpuSystem    uint64 // nanoseconds
	cfsPeriods, cfsThrottledPeriods uint64
	cfsThrottledTime                uint64 // nanoseconds
	hasMemory                       bool
	memUsage, memMaxUsage, memLimit uint64 // memLimit 0: unlimited
	memWorkingSet, memRSS, memCache uint64
	memMappedFile, memKernel        uint64
	memActiveFile, memInactiveFile  uint64
	memFailcnt, pgFault, pgMajFault uint64
	hasSwap                         bool
	swapUsage, swapLimit            uint64 // swapLimit 0: unlimited
	hasOOMKills                     bool
	oomKills                        uint64
	hasPids                         bool
	pidsCurrent, pidsLimit          uint64 // pidsLimit 0: unlimited
	blockIO                         []blockIOUsage
}

// blockIOUsage is what a cgroup read from and wrote to one block device.
type blockIOUsage struct {
	major, minor          uint64
	device                string
	readBytes, writeBytes uint64
	readOps, writeOps     uint64
}

// unlimitedMemory: above this a cgroup memory limit means "none" (the
// kernel reports a page-rounded near-MaxInt64; cadvisor uses the same cut).
const unlimitedMemory = uint64(1 << 62)

func limitOrZero(v uint64) uint64 {
	if v > unlimitedMemory {
		return 0
	}
	return v
}

// decodeTaskMetric turns containerd's task metric (cgroup v1 or v2 stats
// as a typeurl Any) into a sample.
func decodeTaskMetric(m *types.Metric) (cgroupSample, error) {
	if m == nil || m.Data == nil {
		return cgroupSample{}, fmt.Errorf("empty task metric")
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return cgroupSample{}, fmt.Errorf("decode task metric %s: %w", m.ID, err)
	}
	at := time.Now()
	if m.Timestamp != nil {
		at = m.Timestamp.AsTime()
	}
	switch s := v.(type) {
	case *cgroup1.Metrics:
		return sampleFromCgroup1(s, at), nil
	case *cgroup2.Metrics:
		return sampleFromCgroup2(s, at), nil
	}
	return cgroupSample{}, fmt.Errorf("task metric %s has unexpected type %T", m.ID, v)
}

func sampleFromCgroup1(s *cgroup1.Metrics, at time.Time) cgroupSample {
	out := cgroupSample{at: at}
	if u := s.GetCPU().GetUsage(); u != nil {
		out.hasCPU = true
		out.cpuTotal, out.cpuUser, out.cpuSystem = u.Total, u.User, u.Kernel
	}
	if t := s.GetCPU().GetThrottling(); t != nil {
		out.cfsPeriods, out.cfsThrottledPeriods, out.cfsThrottledTime = t.Periods, t.ThrottledPeriods, t.ThrottledTime
	}
	if m := s.GetMemory(); m.GetUsage() != nil {
		out.hasMemory = true
		out.memUsage = m.Usage.Usage
		out.memMaxUsage = m.Usage.Max
		out.memLimit = limitOrZero(m.Usage.Limit)
		out.memFailcnt = m.Usage.Failcnt
		// As the kubelet and cadvisor: working set is usage less the
		// page cache the kernel may drop first.
		if m.TotalInactiveFile < m.Usage.Usage {
			out.memWorkingSet = m.Usage.Usage - m.TotalInactiveFile
		}
		out.memRSS, out.memCache, out.memMappedFile = m.TotalRSS, m.TotalCache, m.TotalMappedFile
		out.memActiveFile, out.memInactiveFile = m.TotalActiveFile, m.TotalInactiveFile
		out.pgFault, out.pgMajFault = m.TotalPgFault, m.TotalPgMajFault
		if m.Kernel != nil {
			out.memKernel = m.Kernel.Usage
		}
		// v1's "swap" entry is memory+swap (memsw); without swap
		// accounting in the kernel it is absent or zero.
		if sw := m.GetSwap(); sw != nil && sw.Usage >= m.Usage.Usage && sw.Usage > 0 {
			out.hasSwap = true
			out.swapUsage = sw.Usage - m.Usage.Usage
			if lim := limitOrZero(sw.Limit); lim != 0 && out.memLimit != 0 && lim >= out.memLimit {
				out.swapLimit = lim - out.memLimit
			}
		}
	}
	if o := s.GetMemoryOomControl(); o != nil {
		out.hasOOMKills = true
		out.oomKills = o.OomKill
	}
	if p := s.GetPids(); p != nil {
		out.hasPids = true
		out.pidsCurrent, out.pidsLimit = p.Current, p.Limit
	}
	if b := s.GetBlkio(); b != nil {
		var devices [][2]uint64 // in the order the kernel listed them
		byDevice := map[[2]uint64]*blockIOUsage{}
		entry := func(e *cgroup1.BlkIOEntry) *blockIOUsage {
			k := [2]uint64{e.Major, e.Minor}
			if byDevice[k] == nil {
				byDevice[k] = &blockIOUsage{major: e.Major, minor: e.Minor, device: e.Device}
				devices = append(devices, k)
			}
			return byDevice[k]
		}
		for _, e := range b.IoServiceBytesRecursive {
			switch e.Op {
			case "Read":
				entry(e).readBytes = e.Value
			case "Write":
				entry(e).writeBytes = e.Value
			}
		}
		for _, e := range b.IoServicedRecursive {
			switch e.Op {
			case "Read":
				entry(e).readOps = e.Value
			case "Write":
				entry(e).writeOps = e.Value
			}
		}
		for _, k := range devices {
			u := *byDevice[k]
			if u.device == "" {
				u.device = fmt.Sprintf("%d:%d", u.major, u.minor)
			}
			out.blockIO = append(out.blockIO, u)
		}
	}
	return out
}

func sampleFromCgroup2(s *cgroup2.Metrics, at time.Time) cgroupSample {
	out := cgroupSample{at: at}
	if c := s.GetCPU(); c != nil {
		out.hasCPU = true
		out.cpuTotal, out.cpuUser, out.cpuSystem = c.UsageUsec*1000, c.UserUsec*1000, c.SystemUsec*1000
		out.cfsPeriods, out.cfsThrottledPeriods, out.cfsThrottledTime = c.NrPeriods, c.NrThrottled, c.ThrottledUsec*1000
	}
	if m := s.GetMemory(); m != nil {
		out.hasMemory = true
		out.memUsage, out.memMaxUsage, out.memLimit = m.Usage, m.MaxUsage, limitOrZero(m.UsageLimit)
		if m.InactiveFile < m.Usage {
			out.memWorkingSet = m.Usage - m.InactiveFile
		}
		// cadvisor on v2: rss is anonymous memory, cache is file memory.
		out.memRSS, out.memCache, out.memMappedFile = m.Anon, m.File, m.FileMapped
		out.memActiveFile, out.memInactiveFile = m.ActiveFile, m.InactiveFile
		out.memKernel = m.KernelStack + m.Slab + m.Sock
		out.pgFault, out.pgMajFault = m.Pgfault, m.Pgmajfault
		out.hasSwap = true
		out.swapUsage, out.swapLimit = m.SwapUsage, limitOrZero(m.SwapLimit)
	}
	if e := s.GetMemoryEvents(); e != nil {
		out.hasOOMKills = true
		out.oomKills = e.OomKill
	}
	if p := s.GetPids(); p != nil {
		out.hasPids = true
		out.pidsCurrent, out.pidsLimit = p.Current, p.Limit
	}
	for _, e := range s.GetIo().GetUsage() {
		out.blockIO = append(out.blockIO, blockIOUsage{
			major: e.Major, minor: e.Minor, device: fmt.Sprintf("%d:%d", e.Major, e.Minor),
			readBytes: e.Rbytes, writeBytes: e.Wbytes, readOps: e.Rios, writeOps: e.Wios,
		})
	}
	return out
}

// add sums another task's sample into s: a pod's usage is the sum of its
// containers' and its pause process's.
func (s *cgroupSample) add(o cgroupSample) {
	if o.at.After(s.at) {
		s.at = o.at
	}
	if o.hasCPU {
		s.hasCPU = true
		s.cpuTotal += o.cpuTotal
		s.cpuUser += o.cpuUser
		s.cpuSystem += o.cpuSystem
	}
	if o.hasMemory {
		s.hasMemory = true
		s.memUsage += o.memUsage
		s.memWorkingSet += o.memWorkingSet
		s.memRSS += o.memRSS
		s.memCache += o.memCache
		s.pgFault += o.pgFault
		s.pgMajFault += o.pgMajFault
	}
	if o.hasPids {
		s.hasPids = true
		s.pidsCurrent += o.pidsCurrent
	}
}
