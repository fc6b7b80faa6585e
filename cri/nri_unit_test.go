package cri

import (
	"errors"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestAdjustSpec(t *testing.T) {
	spec := &specs.Spec{
		Process: &specs.Process{
			Args:    []string{"sleep", "1"},
			Env:     []string{"PATH=/bin", "DROP=1", "KEEP=1"},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}},
		},
		Mounts:      []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, {Destination: "/data", Type: "bind", Source: "/old"}},
		Annotations: map[string]string{"drop": "x"},
		Linux:       &specs.Linux{},
	}
	a := &api.ContainerAdjustment{}
	a.AddEnv("NEW", "2")
	a.AddEnv("KEEP", "2")
	a.RemoveEnv("DROP")
	a.AddAnnotation("added", "y")
	a.RemoveAnnotation("drop")
	a.AddMount(&api.Mount{Destination: "/data", Type: "bind", Source: "/new", Options: []string{"rbind", "ro"}})
	a.AddRlimit("RLIMIT_NOFILE", 1024, 512)
	a.SetLinuxOomScoreAdj(intPtr(-1000))
	a.SetLinuxMemoryLimit(64 << 20)
	a.SetLinuxCPUSetCPUs("0")
	a.SetLinuxSysctl("net.ipv4.ip_unprivileged_port_start", "0")

	if err := adjustSpec(spec, a, oomPolicy{floor: -500, restricted: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/bin", "KEEP=2", "NEW=2"}; !slices.Equal(spec.Process.Env, want) {
		t.Errorf("env %q, want %q", spec.Process.Env, want)
	}
	if spec.Annotations["added"] != "y" || spec.Annotations["drop"] != "" {
		t.Errorf("annotations %v", spec.Annotations)
	}
	// The replaced mount, once; nrigen orders mounts parents first.
	if i := slices.IndexFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/data" }); len(spec.Mounts) != 2 || i < 0 || spec.Mounts[i].Source != "/new" {
		t.Errorf("mounts %+v", spec.Mounts)
	}
	if want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}}; !slices.Equal(spec.Process.Rlimits, want) {
		t.Errorf("rlimits %+v, want the adjusted one only", spec.Process.Rlimits)
	}
	if adj := spec.Process.OOMScoreAdj; adj == nil || *adj != -500 {
		t.Errorf("oom_score_adj %v, want the host's floor -500", adj)
	}
	if r := spec.Linux.Resources; r == nil || *r.Memory.Limit != 64<<20 || r.CPU.Cpus != "0" {
		t.Errorf("resources %+v", r)
	}
	if spec.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctl %v", spec.Linux.Sysctl)
	}

	cdi := &api.ContainerAdjustment{}
	cdi.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	if err := adjustSpec(spec, cdi, oomPolicy{}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("CDI device adjustment: %v, want not implemented", err)
	}
}

func intPtr(v int) *int { return &v }

func TestNRIResourcesRoundTrip(t *testing.T) {
	req := &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 1 << 30, CpusetCpus: "0-1"}
	got := mergeNRIResources(nil, nriResourcesFromCRI(req))
	if got.String() != req.String() {
		t.Errorf("round trip: got %v, want %v", got, req)
	}
	// A plugin's change wins over the request; what it leaves alone stays.
	merged := mergeNRIResources(req, &api.LinuxResources{Memory: &api.LinuxMemory{Limit: api.Int64(int64(2 << 30))}})
	if merged.MemoryLimitInBytes != 2<<30 || merged.CpuShares != 512 || req.MemoryLimitInBytes != 1<<30 {
		t.Errorf("merged %v (request now %v)", merged, req)
	}
}
