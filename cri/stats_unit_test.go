package cri

import (
	"testing"
	"time"

	cgroup1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func taskMetric(t *testing.T, id string, at time.Time, v any) *types.Metric {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return &types.Metric{ID: id, Timestamp: timestamppb.New(at), Data: a}
}

// Both cgroup versions decode to the same sample: v2's microseconds become
// nanoseconds, working set is usage less inactive file pages, a limit the
// kernel reports as "max" means none.
func TestDecodeTaskMetric(t *testing.T) {
	at := time.Unix(1700000000, 0)
	v1 := taskMetric(t, "a", at, &cgroup1.Metrics{
		CPU:    &cgroup1.CPUStat{Usage: &cgroup1.CPUUsage{Total: 3e9, User: 2e9, Kernel: 1e9}, Throttling: &cgroup1.Throttle{Periods: 7}},
		Memory: &cgroup1.MemoryStat{Usage: &cgroup1.MemoryEntry{Usage: 100 << 20, Limit: 1<<63 - 4096}, TotalInactiveFile: 30 << 20, TotalRSS: 60 << 20, TotalPgFault: 5},
		Pids:   &cgroup1.PidsStat{Current: 3},
		Blkio: &cgroup1.BlkIOStat{
			IoServiceBytesRecursive: []*cgroup1.BlkIOEntry{{Op: "Read", Major: 8, Value: 10}, {Op: "Write", Major: 8, Value: 20}},
			IoServicedRecursive:     []*cgroup1.BlkIOEntry{{Op: "Read", Major: 8, Value: 1}},
		},
	})
	v2 := taskMetric(t, "b", at, &cgroup2.Metrics{
		CPU:    &cgroup2.CPUStat{UsageUsec: 3e6, UserUsec: 2e6, SystemUsec: 1e6, NrPeriods: 7},
		Memory: &cgroup2.MemoryStat{Usage: 100 << 20, UsageLimit: 200 << 20, InactiveFile: 30 << 20, Anon: 60 << 20, Pgfault: 5},
		Pids:   &cgroup2.PidsStat{Current: 3},
		Io:     &cgroup2.IOStat{Usage: []*cgroup2.IOEntry{{Major: 8, Rbytes: 10, Wbytes: 20, Rios: 1}}},
	})
	for _, m := range []*types.Metric{v1, v2} {
		s, err := decodeTaskMetric(m)
		if err != nil {
			t.Fatal(err)
		}
		if !s.at.Equal(at) || !s.hasCPU || s.cpuTotal != 3e9 || s.cpuUser != 2e9 || s.cpuSystem != 1e9 || s.cfsPeriods != 7 {
			t.Errorf("%s: cpu %+v", m.ID, s)
		}
		if !s.hasMemory || s.memWorkingSet != 70<<20 || s.memRSS != 60<<20 || s.pgFault != 5 || !s.hasPids || s.pidsCurrent != 3 {
			t.Errorf("%s: memory %+v", m.ID, s)
		}
		if len(s.blockIO) != 1 || s.blockIO[0].readBytes != 10 || s.blockIO[0].writeBytes != 20 || s.blockIO[0].readOps != 1 || s.blockIO[0].device != "8:0" {
			t.Errorf("%s: block I/O %+v", m.ID, s.blockIO)
		}
		mem := memoryUsage(s)
		switch m.ID {
		case "a": // unlimited: no available bytes
			if mem.AvailableBytes != nil {
				t.Errorf("v1 unlimited: available %v", mem.AvailableBytes)
			}
		case "b":
			if mem.GetAvailableBytes().GetValue() != 130<<20 {
				t.Errorf("v2 limited: available %v", mem.AvailableBytes)
			}
		}
	}
	if _, err := decodeTaskMetric(&types.Metric{ID: "c"}); err == nil {
		t.Error("an empty metric decoded")
	}
}

// usage_nano_cores is the rate between two readings; none on the first,
// after the counter went back, or for a reading seen twice.
func TestNanoCores(t *testing.T) {
	var c statsCache
	t0 := time.Unix(1700000000, 0)
	if r := c.nanoCores("x", 1e9, t0); r != nil {
		t.Errorf("first reading gave a rate %d", *r)
	}
	if r := c.nanoCores("x", 2e9, t0.Add(2*time.Second)); r == nil || *r != 5e8 {
		t.Errorf("half a core: %v", r)
	}
	if r := c.nanoCores("x", 2e9, t0.Add(2*time.Second)); r != nil {
		t.Errorf("same reading twice: %d", *r)
	}
	if r := c.nanoCores("x", 1e9, t0.Add(3*time.Second)); r != nil {
		t.Errorf("counter went back: %d", *r)
	}
	if r := c.nanoCores("x", 4e9, t0.Add(4*time.Second)); r == nil || *r != 3e9 {
		t.Errorf("three cores after the reset: %v", r)
	}
	c.forgetExcept(func(string) bool { return false })
	if r := c.nanoCores("x", 5e9, t0.Add(5*time.Second)); r != nil {
		t.Errorf("forgotten ID still had a baseline: %d", *r)
	}
}
