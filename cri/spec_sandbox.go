package cri

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotations kcrid puts on OCI specs, under the names containerd's CRI
// uses so hooks and NRI plugins written for it recognise our containers.
const (
	annotationContainerType    = "io.kubernetes.cri.container-type"
	annotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	annotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	annotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	annotationContainerName    = "io.kubernetes.cri.container-name"
	annotationImageName        = "io.kubernetes.cri.image-name"
)

// sandboxOOMScoreAdj is what the pause process asks for (as the kubelet's
// own runtimes do); it is clamped where the host forbids lowering it.
const sandboxOOMScoreAdj = -998

// specOpt adapts a plain spec edit to containerd's SpecOpts.
func specOpt(f func(s *oci.Spec) error) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		return f(s)
	}
}

// withoutRlimits drops the default spec's RLIMIT_NOFILE of 1024: pods get
// the limits of the runtime that runs them (containerd's shim), as with
// the kubelet's other runtimes, and the kubelet has no way to ask for more.
var withoutRlimits = specOpt(func(s *oci.Spec) error {
	s.Process.Rlimits = nil
	return nil
})

// sandboxSpecOpts builds the pause container's spec.
func sandboxSpecOpts(id string, cfg *runtimeapi.PodSandboxConfig, imageConfig ocispec.ImageConfig, netnsPath string, oom oomPolicy) ([]oci.SpecOpts, error) {
	if len(imageConfig.Entrypoint)+len(imageConfig.Cmd) == 0 {
		return nil, fmt.Errorf("sandbox image has neither entrypoint nor cmd: %w", errdefs.ErrInvalidArgument)
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNetwork := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	opts := []oci.SpecOpts{
		oci.WithDefaultSpec(),
		withoutRlimits,
		oci.WithoutRunMount,
		oci.WithDefaultUnixDevices,
		withSandboxImageConfig(imageConfig),
		oci.WithNoNewPrivileges,
	}
	if hostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		opts = append(opts,
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath}))
		if h := cfg.GetHostname(); h != "" {
			opts = append(opts, oci.WithHostname(h))
		}
	}
	if nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	sc := cfg.GetLinux().GetSecurityContext()
	if sc.GetRunAsUser() != nil {
		uid := uint32(sc.GetRunAsUser().GetValue())
		gid := uid
		if sc.GetRunAsGroup() != nil {
			gid = uint32(sc.GetRunAsGroup().GetValue())
		}
		opts = append(opts, oci.WithUIDGID(uid, gid))
	}
	if sc.GetReadonlyRootfs() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	opts = append(opts,
		oci.WithCgroup(cgroupsPath(cfg.GetLinux().GetCgroupParent(), id)),
		withSysctls(cfg.GetLinux().GetSysctls()),
		specOpt(func(s *oci.Spec) error {
			adj := oom.clamp(sandboxOOMScoreAdj)
			s.Process.OOMScoreAdj = &adj
			return nil
		}),
		oci.WithAnnotations(sandboxAnnotations(id, cfg, annotationTypeSandbox)),
	)
	return opts, nil
}

// withSandboxImageConfig takes the pause process's command, environment,
// working dir and user from the image config kcrid already holds (cached
// with the image's description). oci.WithImageConfig would read the config
// from content again and mount the rootfs to look up supplementary groups
// in its /etc/group, which the pause process has no use for: a few
// milliseconds of every RunPodSandbox.
func withSandboxImageConfig(config ocispec.ImageConfig) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		cwd := config.WorkingDir
		if cwd == "" {
			cwd = "/"
		}
		opts := []oci.SpecOpts{
			oci.WithEnv(config.Env),
			oci.WithProcessArgs(append(slices.Clone(config.Entrypoint), config.Cmd...)...),
			oci.WithProcessCwd(cwd),
		}
		if config.User != "" {
			opts = append(opts, oci.WithUser(config.User))
		}
		for _, opt := range opts {
			if err := opt(ctx, client, c, s); err != nil {
				return err
			}
		}
		return nil
	}
}

const (
	annotationTypeSandbox   = "sandbox"
	annotationTypeContainer = "container"
)

func sandboxAnnotations(id string, cfg *runtimeapi.PodSandboxConfig, kind string) map[string]string {
	a := map[string]string{}
	if kind == annotationTypeSandbox {
		for k, v := range cfg.GetAnnotations() {
			a[k] = v
		}
	}
	a[annotationContainerType] = kind
	a[annotationSandboxID] = id
	a[annotationSandboxName] = cfg.GetMetadata().GetName()
	a[annotationSandboxNamespace] = cfg.GetMetadata().GetNamespace()
	a[annotationSandboxUID] = cfg.GetMetadata().GetUid()
	return a
}

// cgroupsPath is a cgroupfs path under the pod's cgroup parent, or under
// /kcrid when the pod names none.
func cgroupsPath(parent, id string) string {
	if parent == "" {
		parent = "/kcrid"
	}
	return path.Join("/", parent, id)
}

func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return specOpt(func(s *oci.Spec) error {
		if len(sysctls) == 0 {
			return nil
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range sysctls {
			s.Linux.Sysctl[k] = v
		}
		return nil
	})
}
