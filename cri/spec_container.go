package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/containers"
)

// containerSpecInput is everything a container's spec is built from.
type containerSpecInput struct {
	id          string
	config      *runtimeapi.ContainerConfig
	sandboxID   string
	sandbox     *runtimeapi.PodSandboxConfig
	sandboxDir  string // hostname, hosts, resolv.conf
	shmSource   string // what /dev/shm binds (sandbox_shm.go)
	netnsPath   string
	sandboxPid  uint32 // pause process, for joining IPC/UTS/PID
	targetPid   uint32 // for NamespaceMode_TARGET
	imageName   string
	imageConfig ocispec.ImageConfig
	oom         oomPolicy
	// imageVolumes are the mounts of the config's image volumes, by index
	// of the CRI mount (container_image_volume.go).
	imageVolumes map[int]specs.Mount
	// userns is the pod's own user namespace, which the container joins;
	// nil for the host's (userns.go).
	userns *podUserns
	// recursiveReadOnly: the runtime can make mounts recursively read-only.
	recursiveReadOnly bool
}

// containerSpecOpts turns the CRI config and the image config into spec
// options. Options needing the rootfs (user lookups) come through
// containerd's oci helpers, which mount the snapshot read-only.
func containerSpecOpts(in containerSpecInput) ([]oci.SpecOpts, error) {
	cfg := in.config
	args := commandLine(cfg.GetCommand(), cfg.GetArgs(), in.imageConfig.Entrypoint, in.imageConfig.Cmd)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command given and image %s has neither entrypoint nor cmd: %w", in.imageName, errdefs.ErrInvalidArgument)
	}
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.imageConfig.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	hostname, _ := os.ReadFile(filepath.Join(in.sandboxDir, hostnameFile))
	env := mergeEnv(in.imageConfig.Env, cfg.GetEnvs(), strings.TrimSpace(string(hostname)))

	opts := []oci.SpecOpts{
		oci.WithDefaultSpec(),
		withoutRlimits,
		oci.WithDefaultUnixDevices,
		oci.WithProcessArgs(args...),
		oci.WithProcessCwd(cwd),
		oci.WithEnv(env),
	}
	if cfg.GetTty() {
		opts = append(opts, oci.WithTTY)
	}

	mountOpts, err := mountSpecOpts(in)
	if err != nil {
		return nil, err
	}
	opts = append(opts, mountOpts...)
	for _, d := range cfg.GetDevices() {
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		opts = append(opts, oci.WithDevices(d.GetHostPath(), d.GetContainerPath(), perms))
	}

	secOpts, err := securitySpecOpts(in)
	if err != nil {
		return nil, err
	}
	opts = append(opts, secOpts...)
	opts = append(opts, namespaceSpecOpts(in)...)
	if in.userns != nil {
		opts = append(opts, in.userns.containerSpecOpt(in.sandboxPid))
	}
	opts = append(opts,
		oci.WithCgroup(cgroupsPath(in.sandbox.GetLinux().GetCgroupParent(), in.id)),
		withResources(cfg.GetLinux().GetResources(), in.oom),
		withSysctls(in.sandbox.GetLinux().GetSysctls()),
		oci.WithAnnotations(containerAnnotations(in)),
		containers.WithClampedOOMScoreAdj(in.oom.floor, in.oom.restricted),
	)
	return opts, nil
}

// commandLine applies the kubelet's rules: a command replaces the image's
// entrypoint and drops its cmd; args replace the cmd.
func commandLine(command, args, entrypoint, cmd []string) []string {
	if len(command) > 0 {
		return append(slices.Clone(command), args...)
	}
	if len(args) == 0 {
		args = cmd
	}
	return append(slices.Clone(entrypoint), args...)
}

// mergeEnv starts from the image's env; the container's values win. HOSTNAME
// is set to the pod's hostname unless the container sets it.
func mergeEnv(image []string, kvs []*runtimeapi.KeyValue, hostname string) []string {
	out := []string{}
	pos := map[string]int{}
	set := func(k, v string) {
		if i, ok := pos[k]; ok {
			out[i] = k + "=" + v
			return
		}
		pos[k] = len(out)
		out = append(out, k+"="+v)
	}
	if hostname != "" {
		set("HOSTNAME", hostname)
	}
	for _, e := range image {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	for _, kv := range kvs {
		set(kv.GetKey(), string(kv.GetValue()))
	}
	return out
}

// mountSpecOpts mounts the pod's hostname, hosts and resolv.conf and the
// CRI mounts. A CRI mount at the same destination wins over a default.
func mountSpecOpts(in containerSpecInput) ([]oci.SpecOpts, error) {
	var mounts []specs.Mount
	taken := map[string]bool{}
	rootfsPropagation := ""
	for i, m := range in.config.GetMounts() {
		if m.GetImage() != nil {
			v, ok := in.imageVolumes[i]
			if !ok {
				return nil, fmt.Errorf("image volume %s was not prepared", m.GetContainerPath())
			}
			mounts = append(mounts, v)
			taken[v.Destination] = true
			continue
		}
		dst := m.GetContainerPath()
		if dst == "" || !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("mount container path %q must be absolute: %w", dst, errdefs.ErrInvalidArgument)
		}
		src := m.GetHostPath()
		if src == "" {
			return nil, fmt.Errorf("mount %s: host path is empty: %w", dst, errdefs.ErrInvalidArgument)
		}
		if _, err := os.Stat(src); os.IsNotExist(err) {
			// As the kubelet's other runtimes do: a missing host path is
			// created as a directory.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, fmt.Errorf("create host path %s for mount %s: %w", src, dst, err)
			}
		}
		if resolved, err := filepath.EvalSymlinks(src); err == nil {
			src = resolved
		}
		if m.GetRecursiveReadOnly() {
			if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, fmt.Errorf("mount %s: recursive read-only needs readonly and private propagation: %w", dst, errdefs.ErrInvalidArgument)
			}
			if !in.recursiveReadOnly {
				return nil, fmt.Errorf("mount %s: recursive read-only mounts are not supported by this runtime (runc lacks rro or the kernel mount_setattr): %w", dst, errdefs.ErrInvalidArgument)
			}
		}
		options := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			options = append(options, "rshared")
			rootfsPropagation = "rshared"
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			options = append(options, "rslave")
			if rootfsPropagation != "rshared" {
				rootfsPropagation = "rslave"
			}
		default:
			options = append(options, "rprivate")
		}
		switch {
		case m.GetRecursiveReadOnly():
			// ro for the mount itself, rro (runc, mount_setattr) for
			// every mount below it.
			options = append(options, "ro", "rro")
		case m.GetReadonly():
			options = append(options, "ro")
		default:
			options = append(options, "rw")
		}
		mounts = append(mounts, specs.Mount{Destination: filepath.Clean(dst), Source: src, Type: "bind", Options: options})
		taken[filepath.Clean(dst)] = true
	}
	readonlyRoot := in.config.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	for _, f := range []struct{ file, dst string }{
		{hostnameFile, "/etc/hostname"},
		{hostsFile, "/etc/hosts"},
		{resolvFile, "/etc/resolv.conf"},
	} {
		if taken[f.dst] {
			continue
		}
		opt := "rw"
		if readonlyRoot {
			opt = "ro"
		}
		mounts = append(mounts, specs.Mount{
			Destination: f.dst, Source: filepath.Join(in.sandboxDir, f.file), Type: "bind",
			Options: []string{"rbind", "rprivate", opt},
		})
	}
	podMounts := podMounts(in, taken)
	return []oci.SpecOpts{specOpt(func(s *oci.Spec) error {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool {
			dst := filepath.Clean(m.Destination)
			// /run stays the image's, as with the kubelet's other runtimes.
			return taken[dst] || dst == "/run"
		})
		// The pod's mounts come before the config's, which may sit below
		// them (/dev/shm/x, /sys/fs/cgroup/y).
		s.Mounts = append(s.Mounts, podMounts...)
		s.Mounts = append(s.Mounts, mounts...)
		if rootfsPropagation != "" {
			s.Linux.RootfsPropagation = rootfsPropagation
		}
		return nil
	})}, nil
}

// podMounts are the mounts every container of a pod gets unless its config
// mounts something there itself: the pod's shared /dev/shm and a
// read-only /sys/fs/cgroup (made writable for a privileged container by
// oci.WithWriteableCgroupfs), which workloads read their limits from.
// Their destinations are marked taken, replacing the default spec's.
func podMounts(in containerSpecInput, taken map[string]bool) []specs.Mount {
	var out []specs.Mount
	if !taken["/dev/shm"] && in.shmSource != "" {
		out = append(out, specs.Mount{Destination: "/dev/shm", Source: in.shmSource, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}})
		taken["/dev/shm"] = true
	}
	if !taken["/sys/fs/cgroup"] && !taken["/sys"] {
		out = append(out, specs.Mount{Destination: "/sys/fs/cgroup", Source: "cgroup", Type: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
		taken["/sys/fs/cgroup"] = true
	}
	return out
}

// securitySpecOpts covers user, privileges, capabilities, paths, seccomp.
func securitySpecOpts(in containerSpecInput) ([]oci.SpecOpts, error) {
	sc := in.config.GetLinux().GetSecurityContext()
	var opts []oci.SpecOpts

	userOpts, err := userSpecOpts(sc, in.imageConfig.User)
	if err != nil {
		return nil, err
	}
	opts = append(opts, userOpts...)

	if sc.GetPrivileged() {
		if !in.sandbox.GetLinux().GetSecurityContext().GetPrivileged() {
			return nil, fmt.Errorf("privileged container in a non-privileged pod: %w", errdefs.ErrInvalidArgument)
		}
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithWriteableSysfs, oci.WithWriteableCgroupfs,
			specOpt(func(s *oci.Spec) error {
				s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
				s.Linux.Seccomp = nil
				return nil
			}))
	} else {
		opts = append(opts, capabilityOpts(sc.GetCapabilities())...)
		if sc.GetMaskedPaths() != nil {
			opts = append(opts, oci.WithMaskedPaths(sc.GetMaskedPaths()))
		}
		if sc.GetReadonlyPaths() != nil {
			opts = append(opts, oci.WithReadonlyPaths(sc.GetReadonlyPaths()))
		}
		seccompOpt, err := seccompSpecOpt(sc)
		if err != nil {
			return nil, err
		}
		if seccompOpt != nil {
			opts = append(opts, seccompOpt)
		}
	}
	if sc.GetReadonlyRootfs() {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if sc.GetNoNewPrivs() {
		opts = append(opts, oci.WithNoNewPrivileges)
	} else {
		opts = append(opts, oci.WithNewPrivileges)
	}
	return opts, nil
}

// userSpecOpts resolves the user in the rootfs: run_as_user, else
// run_as_username, else the image's USER; run_as_group overrides the group;
// supplemental groups are added to those /etc/group lists for the user.
func userSpecOpts(sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) ([]oci.SpecOpts, error) {
	var opts []oci.SpecOpts
	var userstr string
	switch {
	case sc.GetRunAsUser() != nil:
		uid := sc.GetRunAsUser().GetValue()
		opts = append(opts, oci.WithUserID(uint32(uid)))
		userstr = strconv.FormatInt(uid, 10)
	case sc.GetRunAsUsername() != "":
		opts = append(opts, oci.WithUsername(sc.GetRunAsUsername()))
		userstr = sc.GetRunAsUsername()
	case imageUser != "":
		opts = append(opts, oci.WithUser(imageUser))
		userstr, _, _ = strings.Cut(imageUser, ":")
	}
	if sc.GetRunAsGroup() != nil {
		if userstr == "" {
			return nil, fmt.Errorf("run_as_group %d given without a user: %w", sc.GetRunAsGroup().GetValue(), errdefs.ErrInvalidArgument)
		}
		gid := uint32(sc.GetRunAsGroup().GetValue())
		opts = append(opts, specOpt(func(s *oci.Spec) error {
			s.Process.User.GID = gid
			return nil
		}))
	}
	// Merge (the default) adds the groups /etc/group in the image lists
	// for the user; Strict uses only the ones given.
	if userstr != "" && sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		opts = append(opts, oci.WithAdditionalGIDs(userstr))
	}
	if groups := sc.GetSupplementalGroups(); len(groups) > 0 {
		opts = append(opts, specOpt(func(s *oci.Spec) error {
			for _, g := range groups {
				if !slices.Contains(s.Process.User.AdditionalGids, uint32(g)) {
					s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
				}
			}
			return nil
		}))
	}
	// The primary group is always among the additional ones, as runc and
	// the kubelet's other runtimes report it.
	opts = append(opts, specOpt(func(s *oci.Spec) error {
		if !slices.Contains(s.Process.User.AdditionalGids, s.Process.User.GID) {
			s.Process.User.AdditionalGids = append([]uint32{s.Process.User.GID}, s.Process.User.AdditionalGids...)
		}
		return nil
	}))
	return opts, nil
}

// capabilityOpts applies add/drop, where "ALL" means every capability
// kcrid has (add) or none (drop).
func capabilityOpts(c *runtimeapi.Capability) []oci.SpecOpts {
	if c == nil {
		return nil
	}
	add := normalizeCaps(c.GetAddCapabilities())
	drop := normalizeCaps(c.GetDropCapabilities())
	var opts []oci.SpecOpts
	if slices.Contains(add, "CAP_ALL") {
		// Every capability kcrid itself has: asking for more (a host root
		// may lack some, e.g. CAP_SYS_RESOURCE) makes runc fail.
		opts = append(opts, oci.WithAllCurrentCapabilities)
	}
	if slices.Contains(drop, "CAP_ALL") {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	add = slices.DeleteFunc(add, func(s string) bool { return s == "CAP_ALL" })
	drop = slices.DeleteFunc(drop, func(s string) bool { return s == "CAP_ALL" })
	if len(add) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(add))
	}
	if len(drop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(drop))
	}
	if ambient := normalizeCaps(c.GetAddAmbientCapabilities()); len(ambient) > 0 {
		opts = append(opts, oci.WithAmbientCapabilities(ambient))
	}
	return opts
}

func normalizeCaps(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// seccompSpecOpt: RuntimeDefault uses containerd's default profile,
// Localhost a JSON profile file, Unconfined (the default) none.
func seccompSpecOpt(sc *runtimeapi.LinuxContainerSecurityContext) (oci.SpecOpts, error) {
	profileType, localPath := runtimeapi.SecurityProfile_Unconfined, ""
	if p := sc.GetSeccomp(); p != nil {
		profileType, localPath = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		switch legacy := sc.GetSeccompProfilePath(); {
		case legacy == "runtime/default" || legacy == "docker/default":
			profileType = runtimeapi.SecurityProfile_RuntimeDefault
		case strings.HasPrefix(legacy, "localhost/"):
			profileType, localPath = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(legacy, "localhost/")
		}
	}
	switch profileType {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return seccomp.WithDefaultProfile(), nil
	case runtimeapi.SecurityProfile_Localhost:
		data, err := os.ReadFile(localPath)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile %q: %v: %w", localPath, err, errdefs.ErrInvalidArgument)
		}
		var profile specs.LinuxSeccomp
		if err := json.Unmarshal(data, &profile); err != nil {
			return nil, fmt.Errorf("seccomp profile %q: %v: %w", localPath, err, errdefs.ErrInvalidArgument)
		}
		return specOpt(func(s *oci.Spec) error {
			s.Linux.Seccomp = &profile
			return nil
		}), nil
	}
	return nil, nil
}

// namespaceSpecOpts joins the pod's namespaces (or the host's).
func namespaceSpecOpts(in containerSpecInput) []oci.SpecOpts {
	ns := in.config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	podNS := in.sandbox.GetLinux().GetSecurityContext().GetNamespaceOptions()
	proc := func(kind string) string { return fmt.Sprintf("/proc/%d/ns/%s", in.sandboxPid, kind) }
	var opts []oci.SpecOpts
	if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE || podNS.GetNetwork() == runtimeapi.NamespaceMode_NODE {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		opts = append(opts,
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.netnsPath}),
			oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: proc("uts")}))
	}
	if ns.GetIpc() == runtimeapi.NamespaceMode_NODE || podNS.GetIpc() == runtimeapi.NamespaceMode_NODE {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	} else {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: proc("ipc")}))
	}
	switch ns.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	case runtimeapi.NamespaceMode_POD:
		if podNS.GetPid() == runtimeapi.NamespaceMode_NODE {
			opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
		} else {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: proc("pid")}))
		}
	case runtimeapi.NamespaceMode_TARGET:
		if in.targetPid != 0 {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{
				Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", in.targetPid)}))
		}
	}
	return opts
}

// withResources sets cgroup limits and oom_score_adj (clamped).
func withResources(r *runtimeapi.LinuxContainerResources, oom oomPolicy) oci.SpecOpts {
	return specOpt(func(s *oci.Spec) error {
		if r == nil {
			return nil
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		applyResources(s.Linux.Resources, r)
		adj := oom.clamp(int(r.GetOomScoreAdj()))
		s.Process.OOMScoreAdj = &adj
		return nil
	})
}

// applyResources copies the CRI limits that are set into res.
func applyResources(res *specs.LinuxResources, r *runtimeapi.LinuxContainerResources) {
	if res.CPU == nil {
		res.CPU = &specs.LinuxCPU{}
	}
	if v := r.GetCpuShares(); v != 0 {
		shares := uint64(v)
		res.CPU.Shares = &shares
	}
	if v := r.GetCpuQuota(); v != 0 {
		res.CPU.Quota = &v
	}
	if v := r.GetCpuPeriod(); v != 0 {
		period := uint64(v)
		res.CPU.Period = &period
	}
	if v := r.GetCpusetCpus(); v != "" {
		res.CPU.Cpus = v
	}
	if v := r.GetCpusetMems(); v != "" {
		res.CPU.Mems = v
	}
	if v := r.GetMemoryLimitInBytes(); v != 0 {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		res.Memory.Limit = &v
		if swap := r.GetMemorySwapLimitInBytes(); swap != 0 {
			res.Memory.Swap = &swap
		}
	}
	if len(r.GetUnified()) > 0 {
		res.Unified = r.GetUnified()
	}
}

func containerAnnotations(in containerSpecInput) map[string]string {
	a := sandboxAnnotations(in.sandboxID, in.sandbox, annotationTypeContainer)
	for k, v := range in.config.GetAnnotations() {
		a[k] = v
	}
	a[annotationContainerName] = in.config.GetMetadata().GetName()
	a[annotationImageName] = in.imageName
	return a
}
