package cri

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The NRI view of kcrid's sandboxes and containers: what plugins read in
// every hook and in Synchronize.

// nriPodSandbox describes sb to plugins.
func nriPodSandbox(sb *sandbox) *api.PodSandbox {
	cfg := sb.config
	md := cfg.GetMetadata()
	sb.mu.Lock()
	pid, networkDown := sb.pid, sb.status.NetworkDown
	sb.mu.Unlock()
	pod := &api.PodSandbox{
		Id:             sb.meta.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         maps.Clone(cfg.GetLabels()),
		Annotations:    maps.Clone(cfg.GetAnnotations()),
		RuntimeHandler: sb.meta.RuntimeHandler,
		Pid:            pid,
		Ips:            slices.Clone(sb.meta.IPs),
		Linux: &api.LinuxPodSandbox{
			PodOverhead:  nriResourcesFromCRI(cfg.GetLinux().GetOverhead()),
			PodResources: nriResourcesFromCRI(cfg.GetLinux().GetResources()),
			CgroupParent: cfg.GetLinux().GetCgroupParent(),
		},
	}
	// The netns path is only worth giving while the namespace exists.
	if sb.meta.NetNSPath != "" && !networkDown {
		pod.Linux.Namespaces = []*api.LinuxNamespace{{Type: string(specs.NetworkNamespace), Path: sb.meta.NetNSPath}}
	}
	return pod
}

// container describes c to plugins, with its stored OCI spec and, while
// it runs, its pid. What cannot be read is left out (and logged): a hook
// still goes out.
func (h *nriHooks) container(ctx context.Context, c *container) *api.Container {
	c.mu.Lock()
	status := c.status
	c.mu.Unlock()
	spec := &specs.Spec{}
	if rec, err := h.rt.client.ContainerService().Get(ctx, c.meta.ID); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Debug("NRI: no container record")
	} else if rec.Spec != nil {
		if err := json.Unmarshal(rec.Spec.GetValue(), spec); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("NRI: undecodable spec")
		}
	}
	var pid uint32
	if status.state() == runtimeapi.ContainerState_CONTAINER_RUNNING {
		if resp, err := h.rt.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: c.meta.ID}); err == nil {
			pid = resp.GetProcess().GetPid()
		}
	}
	return nriContainer(c.meta, c.config, status, spec, pid)
}

// nriContainer describes a container from what kcrid keeps about it and
// its OCI spec (the spec being created, in the CreateContainer hook).
func nriContainer(meta containerMeta, cfg *runtimeapi.ContainerConfig, status containerStatus, spec *specs.Spec, pid uint32) *api.Container {
	annotations := maps.Clone(spec.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, cfg.GetAnnotations())
	ctr := &api.Container{
		Id:            meta.ID,
		PodSandboxId:  meta.SandboxID,
		Name:          cfg.GetMetadata().GetName(),
		State:         nriContainerState(status),
		Labels:        maps.Clone(cfg.GetLabels()),
		Annotations:   annotations,
		Mounts:        api.FromOCIMounts(spec.Mounts),
		Hooks:         api.FromOCIHooks(spec.Hooks),
		Pid:           pid,
		CreatedAt:     meta.CreatedAt,
		StartedAt:     status.StartedAt,
		FinishedAt:    status.FinishedAt,
		ExitCode:      status.ExitCode,
		StatusReason:  status.Reason,
		StatusMessage: status.Message,
		Image:         &api.Image{Name: meta.ImageName, ConfigDigest: meta.ImageID},
	}
	if p := spec.Process; p != nil {
		ctr.Args = slices.Clone(p.Args)
		ctr.Env = slices.Clone(p.Env)
		for _, l := range p.Rlimits {
			ctr.Rlimits = append(ctr.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
		ctr.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: slices.Clone(p.User.AdditionalGids)}
	}
	if l := spec.Linux; l != nil {
		ctr.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      maps.Clone(l.Sysctl),
		}
		if p := spec.Process; p != nil {
			ctr.Linux.OomScoreAdj = api.Int(p.OOMScoreAdj)
			ctr.Linux.IoPriority = api.FromOCILinuxIOPriority(p.IOPriority)
			if p.Scheduler != nil {
				ctr.Linux.Scheduler = api.FromOCILinuxScheduler(p.Scheduler)
			}
		}
		if sc := cfg.GetLinux().GetSecurityContext().GetSeccomp(); sc != nil {
			ctr.Linux.SeccompProfile = &api.SecurityProfile{
				ProfileType:  api.SecurityProfile_ProfileType(sc.GetProfileType()),
				LocalhostRef: sc.GetLocalhostRef(),
			}
		}
	}
	return ctr
}

func nriContainerState(s containerStatus) api.ContainerState {
	switch s.state() {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return api.ContainerState_CONTAINER_CREATED
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return api.ContainerState_CONTAINER_RUNNING
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// nriResourcesFromCRI converts CRI limits to NRI's form; unset (zero)
// CRI fields stay unset.
func nriResourcesFromCRI(r *runtimeapi.LinuxContainerResources) *api.LinuxResources {
	if r == nil {
		return nil
	}
	out := &api.LinuxResources{
		Cpu:    &api.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()},
		Memory: &api.LinuxMemory{},
	}
	if v := r.GetCpuShares(); v != 0 {
		out.Cpu.Shares = api.UInt64(uint64(v))
	}
	if v := r.GetCpuQuota(); v != 0 {
		out.Cpu.Quota = api.Int64(v)
	}
	if v := r.GetCpuPeriod(); v != 0 {
		out.Cpu.Period = api.UInt64(uint64(v))
	}
	if v := r.GetMemoryLimitInBytes(); v != 0 {
		out.Memory.Limit = api.Int64(v)
	}
	if v := r.GetMemorySwapLimitInBytes(); v != 0 {
		out.Memory.Swap = api.Int64(v)
	}
	for _, l := range r.GetHugepageLimits() {
		out.HugepageLimits = append(out.HugepageLimits, &api.HugepageLimit{PageSize: l.GetPageSize(), Limit: l.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		out.Unified = maps.Clone(r.GetUnified())
	}
	return out
}

// mergeNRIResources is base (which may be nil) with the limits n sets
// laid over it, in CRI form.
func mergeNRIResources(base *runtimeapi.LinuxContainerResources, n *api.LinuxResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if base != nil {
		out = proto.Clone(base).(*runtimeapi.LinuxContainerResources)
	}
	if n == nil {
		return out
	}
	if cpu := n.GetCpu(); cpu != nil {
		if v := cpu.GetShares(); v != nil {
			out.CpuShares = int64(v.GetValue())
		}
		if v := cpu.GetQuota(); v != nil {
			out.CpuQuota = v.GetValue()
		}
		if v := cpu.GetPeriod(); v != nil {
			out.CpuPeriod = int64(v.GetValue())
		}
		if cpu.GetCpus() != "" {
			out.CpusetCpus = cpu.GetCpus()
		}
		if cpu.GetMems() != "" {
			out.CpusetMems = cpu.GetMems()
		}
	}
	if mem := n.GetMemory(); mem != nil {
		if v := mem.GetLimit(); v != nil {
			out.MemoryLimitInBytes = v.GetValue()
		}
		if v := mem.GetSwap(); v != nil {
			out.MemorySwapLimitInBytes = v.GetValue()
		}
	}
	if len(n.GetHugepageLimits()) > 0 {
		out.HugepageLimits = nil
		for _, l := range n.GetHugepageLimits() {
			out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: l.GetPageSize(), Limit: l.GetLimit()})
		}
	}
	if len(n.GetUnified()) > 0 {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		maps.Copy(out.Unified, n.GetUnified())
	}
	return out
}
