package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Applying plugins' ContainerAdjustment to the OCI spec at creation.
// containerd/nri's generate package knows what each adjustment means
// (removal markers, env merging, mount ordering, memory swap following
// the limit, ...); it edits the spec through specEditor below, kcrid's
// small implementation of its UnderlyingGenerator. Block I/O and RDT
// classes and CDI devices are refused: kcrid configures none.

// adjustContainer relays CreateContainer to plugins and applies their
// adjustment to the spec being created: the last NewContainerOpts, so
// plugins see the finished spec. An error fails the creation.
func (h *nriHooks) adjustContainer(sb *sandbox, meta containerMeta, cfg *runtimeapi.ContainerConfig) containerd.NewContainerOpts {
	return func(ctx context.Context, _ *containerd.Client, rec *containers.Container) error {
		if h == nil {
			return nil
		}
		if rec.Spec == nil {
			return fmt.Errorf("NRI: container %s has no spec yet", rec.ID)
		}
		spec := &specs.Spec{}
		if err := json.Unmarshal(rec.Spec.GetValue(), spec); err != nil {
			return fmt.Errorf("NRI: decode spec: %w", err)
		}
		adjust, err := h.createContainer(ctx, sb, nriContainer(meta, cfg, containerStatus{}, spec, 0))
		if err != nil {
			return err
		}
		if adjust == nil {
			return nil
		}
		if err := adjustSpec(spec, adjust, h.rt.oom); err != nil {
			return fmt.Errorf("NRI adjustment: %w", err)
		}
		a, err := typeurl.MarshalAnyToProto(spec)
		if err != nil {
			return fmt.Errorf("NRI: encode adjusted spec: %w", err)
		}
		rec.Spec = a
		return nil
	}
}

var errNoResourceClasses = errors.New("kcrid configures no block I/O or RDT classes")

// adjustSpec applies adjust to spec; an oom_score_adj below what this
// host allows is raised to the floor, as for CRI requests.
func adjustSpec(spec *specs.Spec, adjust *api.ContainerAdjustment, oom oomPolicy) error {
	if spec.Process == nil {
		spec.Process = &specs.Process{}
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	gen := nrigen.SpecGenerator(&specEditor{spec: spec, oom: oom},
		nrigen.WithBlockIOResolver(func(class string) (*specs.LinuxBlockIO, error) {
			return nil, fmt.Errorf("block I/O class %q: %w: %w", class, errNoResourceClasses, errdefs.ErrNotImplemented)
		}),
		nrigen.WithRdtResolver(func(class string) (*specs.LinuxIntelRdt, error) {
			return nil, fmt.Errorf("RDT class %q: %w: %w", class, errNoResourceClasses, errdefs.ErrNotImplemented)
		}),
		nrigen.WithCDIDeviceInjector(func(_ *specs.Spec, devices []string) error {
			return fmt.Errorf("CDI devices %v: kcrid does not inject CDI devices: %w", devices, errdefs.ErrNotImplemented)
		}),
	)
	if err := gen.Adjust(adjust); err != nil {
		return err
	}
	// The generator appends rlimits; runc applies them in order, so an
	// adjusted limit must replace the spec's own of the same type.
	spec.Process.Rlimits = lastOfEachType(spec.Process.Rlimits)
	return nil
}

// lastOfEachType keeps the last rlimit of each type, in first-seen order.
func lastOfEachType(rlimits []specs.POSIXRlimit) []specs.POSIXRlimit {
	var out []specs.POSIXRlimit
	seen := map[string]int{}
	for _, l := range rlimits {
		if i, ok := seen[l.Type]; ok {
			out[i] = l
			continue
		}
		seen[l.Type] = len(out)
		out = append(out, l)
	}
	return out
}

// specEditor edits an OCI spec in place for nrigen.Generator.
type specEditor struct {
	spec *specs.Spec
	oom  oomPolicy
}

var _ nrigen.UnderlyingGenerator = (*specEditor)(nil)

func (e *specEditor) Spec() *specs.Spec { return e.spec }

func (e *specEditor) process() *specs.Process {
	if e.spec.Process == nil {
		e.spec.Process = &specs.Process{}
	}
	return e.spec.Process
}

func (e *specEditor) linux() *specs.Linux {
	if e.spec.Linux == nil {
		e.spec.Linux = &specs.Linux{}
	}
	return e.spec.Linux
}

func (e *specEditor) resources() *specs.LinuxResources {
	l := e.linux()
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func (e *specEditor) cpu() *specs.LinuxCPU {
	r := e.resources()
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

func (e *specEditor) memory() *specs.LinuxMemory {
	r := e.resources()
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func (e *specEditor) hooks() *specs.Hooks {
	if e.spec.Hooks == nil {
		e.spec.Hooks = &specs.Hooks{}
	}
	return e.spec.Hooks
}

func (e *specEditor) AddAnnotation(key, value string) {
	if e.spec.Annotations == nil {
		e.spec.Annotations = map[string]string{}
	}
	e.spec.Annotations[key] = value
}

func (e *specEditor) RemoveAnnotation(key string) { delete(e.spec.Annotations, key) }

func (e *specEditor) AddProcessEnv(name, value string) {
	p := e.process()
	prefix := name + "="
	for i, kv := range p.Env {
		if strings.HasPrefix(kv, prefix) {
			p.Env[i] = prefix + value
			return
		}
	}
	p.Env = append(p.Env, prefix+value)
}

func (e *specEditor) ClearProcessEnv()             { e.process().Env = nil }
func (e *specEditor) SetProcessArgs(args []string) { e.process().Args = slices.Clone(args) }

func (e *specEditor) SetProcessOOMScoreAdj(adj int) {
	adj = e.oom.clamp(adj)
	e.process().OOMScoreAdj = &adj
}

func (e *specEditor) AddPreStartHook(h specs.Hook) {
	e.hooks().Prestart = append(e.hooks().Prestart, h) //nolint:staticcheck // still what runc runs
}
func (e *specEditor) AddPostStartHook(h specs.Hook) {
	e.hooks().Poststart = append(e.hooks().Poststart, h)
}
func (e *specEditor) AddPostStopHook(h specs.Hook) {
	e.hooks().Poststop = append(e.hooks().Poststop, h)
}

func (e *specEditor) Mounts() []specs.Mount  { return e.spec.Mounts }
func (e *specEditor) ClearMounts()           { e.spec.Mounts = nil }
func (e *specEditor) AddMount(m specs.Mount) { e.spec.Mounts = append(e.spec.Mounts, m) }
func (e *specEditor) RemoveMount(dest string) {
	e.spec.Mounts = slices.DeleteFunc(e.spec.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func (e *specEditor) AddDevice(d specs.LinuxDevice) {
	l := e.linux()
	for i := range l.Devices {
		if l.Devices[i].Path == d.Path {
			l.Devices[i] = d
			return
		}
	}
	l.Devices = append(l.Devices, d)
}

func (e *specEditor) RemoveDevice(path string) {
	l := e.linux()
	l.Devices = slices.DeleteFunc(l.Devices, func(d specs.LinuxDevice) bool { return d.Path == path })
}

func (e *specEditor) AddLinuxResourcesDevice(allow bool, devType string, major, minor *int64, access string) {
	r := e.resources()
	r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: allow, Type: devType, Major: major, Minor: minor, Access: access})
}

func namespaceType(ns string) (specs.LinuxNamespaceType, error) {
	switch t := specs.LinuxNamespaceType(ns); t {
	case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		return t, nil
	}
	return "", fmt.Errorf("unknown namespace type %q: %w", ns, errdefs.ErrInvalidArgument)
}

func (e *specEditor) AddOrReplaceLinuxNamespace(ns, path string) error {
	t, err := namespaceType(ns)
	if err != nil {
		return err
	}
	l := e.linux()
	for i := range l.Namespaces {
		if l.Namespaces[i].Type == t {
			l.Namespaces[i].Path = path
			return nil
		}
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	return nil
}

func (e *specEditor) RemoveLinuxNamespace(ns string) error {
	t, err := namespaceType(ns)
	if err != nil {
		return err
	}
	l := e.linux()
	l.Namespaces = slices.DeleteFunc(l.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
	return nil
}

func (e *specEditor) AddLinuxSysctl(key, value string) {
	l := e.linux()
	if l.Sysctl == nil {
		l.Sysctl = map[string]string{}
	}
	l.Sysctl[key] = value
}

func (e *specEditor) RemoveLinuxSysctl(key string) { delete(e.linux().Sysctl, key) }

func (e *specEditor) SetLinuxCgroupsPath(path string) { e.linux().CgroupsPath = path }

func (e *specEditor) SetLinuxRootPropagation(rp string) error {
	switch rp {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
		e.linux().RootfsPropagation = rp
		return nil
	}
	return fmt.Errorf("rootfs propagation %q: %w", rp, errdefs.ErrInvalidArgument)
}

func (e *specEditor) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	r := e.resources()
	for i := range r.HugepageLimits {
		if r.HugepageLimits[i].Pagesize == pageSize {
			r.HugepageLimits[i].Limit = limit
			return
		}
	}
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (e *specEditor) AddLinuxResourcesUnified(key, val string) {
	r := e.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = val
}

func (e *specEditor) SetLinuxResourcesCPUCpus(cpus string) { e.cpu().Cpus = cpus }
func (e *specEditor) SetLinuxResourcesCPUMems(mems string) { e.cpu().Mems = mems }
func (e *specEditor) SetLinuxResourcesCPUPeriod(v uint64)  { e.cpu().Period = &v }
func (e *specEditor) SetLinuxResourcesCPUQuota(v int64)    { e.cpu().Quota = &v }
func (e *specEditor) SetLinuxResourcesCPUShares(v uint64)  { e.cpu().Shares = &v }
func (e *specEditor) SetLinuxResourcesCPURealtimePeriod(v uint64) {
	e.cpu().RealtimePeriod = &v
}
func (e *specEditor) SetLinuxResourcesCPURealtimeRuntime(v int64) {
	e.cpu().RealtimeRuntime = &v
}
func (e *specEditor) SetLinuxResourcesMemoryLimit(v int64) { e.memory().Limit = &v }
func (e *specEditor) SetLinuxResourcesMemorySwap(v int64)  { e.memory().Swap = &v }
