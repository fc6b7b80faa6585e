package cri

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), codes.AlreadyExists},
		{fmt.Errorf("x: %w", errdefs.ErrFailedPrecondition), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", errdefs.ErrUnauthenticated), codes.Unauthenticated},
		{fmt.Errorf("x: %w", errdefs.ErrDataLoss), codes.DataLoss},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{status.Error(codes.Unimplemented, "later"), codes.Unimplemented},
		{errors.New("plain"), codes.Unknown},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("toStatus(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
}

func TestFilters(t *testing.T) {
	if !matchID("", "abc") || !matchID("ab", "abc") || matchID("b", "abc") {
		t.Error("matchID")
	}
	labels := map[string]string{"app": "web", "tier": "front"}
	if !matchLabels(nil, labels) || !matchLabels(map[string]string{"app": "web"}, labels) ||
		matchLabels(map[string]string{"app": "db"}, labels) || matchLabels(map[string]string{"x": ""}, labels) {
		t.Error("matchLabels")
	}
}

func TestIndex(t *testing.T) {
	x := newIndex[string]("thing")
	if err := x.reserve("n", "abc1"); err != nil {
		t.Fatal(err)
	}
	if err := x.reserve("n", "abd2"); !errdefs.IsAlreadyExists(err) {
		t.Errorf("second reserve: %v", err)
	}
	x.add("abc1", "one")
	x.add("abd2", "two")
	if v, err := x.get("abc"); err != nil || v != "one" {
		t.Errorf("get by prefix: %v %v", v, err)
	}
	if _, err := x.get("ab"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := x.get("zz"); !errdefs.IsNotFound(err) {
		t.Errorf("unknown: %v", err)
	}
	x.remove("abc1", "n")
	if err := x.reserve("n", "abd2"); err != nil {
		t.Errorf("name not freed: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	ep, cmd := []string{"/ep"}, []string{"c1", "c2"}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/ep", "c1", "c2"}},
		{nil, []string{"a"}, []string{"/ep", "a"}},
		{[]string{"/bin/x"}, nil, []string{"/bin/x"}},
		{[]string{"/bin/x"}, []string{"a"}, []string{"/bin/x", "a"}},
	} {
		if got := commandLine(tc.command, tc.args, ep, cmd); !slices.Equal(got, tc.want) {
			t.Errorf("commandLine(%v, %v) = %v, want %v", tc.command, tc.args, got, tc.want)
		}
	}
	if got := commandLine(nil, []string{"a"}, nil, cmd); !slices.Equal(got, []string{"a"}) {
		t.Errorf("args without entrypoint: %v", got)
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []*runtimeapi.KeyValue{{Key: "A", Value: []byte("2")}, {Key: "B", Value: []byte("x=y")}}, "pod")
	want := []string{"HOSTNAME=pod", "PATH=/bin", "A=2", "B=x=y"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %v, want %v", got, want)
	}
}

func TestSandboxFiles(t *testing.T) {
	b, err := resolvContent(&runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}, Searches: []string{"a", "b"}, Options: []string{"ndots:5"}})
	if err != nil || string(b) != "search a b\nnameserver 1.1.1.1\noptions ndots:5\n" {
		t.Errorf("resolv.conf %q %v", b, err)
	}
	if h := hostsContent("pod", []string{"10.0.0.2"}); !strings.Contains(h, "127.0.0.1\tlocalhost") || !strings.Contains(h, "10.0.0.2\tpod\n") {
		t.Errorf("hosts %q", h)
	}
}

func TestImageHelpers(t *testing.T) {
	if uid, name := imageUser("1002:100"); uid == nil || *uid != 1002 || name != "" {
		t.Errorf("imageUser numeric: %v %q", uid, name)
	}
	if uid, name := imageUser("www-data"); uid != nil || name != "www-data" {
		t.Errorf("imageUser name: %v %q", uid, name)
	}
	if uid, name := imageUser(""); uid != nil || name != "" {
		t.Error("imageUser empty")
	}
	for in, want := range map[string]string{
		"docker.io/library/busybox:1.36": "docker.io/library/busybox@sha256:x",
		"127.0.0.1:5000/a/b:t":           "127.0.0.1:5000/a/b@sha256:x",
		"127.0.0.1:5000/a/b@sha256:y":    "127.0.0.1:5000/a/b@sha256:x",
	} {
		if got := repoDigest(in, "sha256:x"); got != want {
			t.Errorf("repoDigest(%s) = %s, want %s", in, got, want)
		}
	}
}

// applySpec builds a container spec without a rootfs (no user lookups).
func applySpec(t *testing.T, in containerSpecInput) (*oci.Spec, error) {
	t.Helper()
	opts, err := containerSpecOpts(in)
	if err != nil {
		return nil, err
	}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	spec := &oci.Spec{}
	return spec, oci.ApplyOpts(ctx, nil, &containers.Container{ID: in.id}, spec, opts...)
}

func baseInput(t *testing.T) containerSpecInput {
	return containerSpecInput{
		id: "c1",
		config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
			Args:     []string{"-v"},
			Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
		},
		sandboxID:   "s1",
		sandbox:     &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}, Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/podu", Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}}},
		sandboxDir:  t.TempDir(),
		netnsPath:   "/run/kcrid/netns/x",
		sandboxPid:  42,
		imageName:   "docker.io/library/web:1",
		imageConfig: ocispec.ImageConfig{Entrypoint: []string{"/web"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin"}, WorkingDir: "/srv"},
		oom:         oomPolicy{floor: 0, restricted: true},
	}
}

func TestContainerSpec(t *testing.T) {
	in := baseInput(t)
	in.config.Mounts = []*runtimeapi.Mount{
		{HostPath: t.TempDir(), ContainerPath: "/data", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{HostPath: t.TempDir(), ContainerPath: "/etc/hosts"},
	}
	in.config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 256, CpuQuota: 5000, CpuPeriod: 10000, CpusetCpus: "0", MemoryLimitInBytes: 1 << 26, OomScoreAdj: -500}
	in.config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"net_bind_service"}}
	in.config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	in.config.Linux.SecurityContext.NoNewPrivs = true
	in.config.Linux.SecurityContext.MaskedPaths = []string{"/proc/kcore"}
	spec, err := applySpec(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(spec.Process.Args, []string{"/web", "-v"}) || spec.Process.Cwd != "/srv" {
		t.Errorf("args %v cwd %s", spec.Process.Args, spec.Process.Cwd)
	}
	var hostsMounts, dataOpts []string
	for _, m := range spec.Mounts {
		switch m.Destination {
		case "/etc/hosts":
			hostsMounts = append(hostsMounts, m.Source)
		case "/data":
			dataOpts = m.Options
		}
	}
	if len(hostsMounts) != 1 || hostsMounts[0] != in.config.Mounts[1].HostPath {
		t.Errorf("/etc/hosts mounts %v: the CRI mount must replace the pod's", hostsMounts)
	}
	if !slices.Contains(dataOpts, "ro") || !slices.Contains(dataOpts, "rslave") || spec.Linux.RootfsPropagation != "rslave" {
		t.Errorf("/data options %v, rootfs propagation %q", dataOpts, spec.Linux.RootfsPropagation)
	}
	nsPaths := map[specs.LinuxNamespaceType]string{}
	for _, ns := range spec.Linux.Namespaces {
		nsPaths[ns.Type] = ns.Path
	}
	if nsPaths[specs.NetworkNamespace] != in.netnsPath || nsPaths[specs.IPCNamespace] != "/proc/42/ns/ipc" ||
		nsPaths[specs.UTSNamespace] != "/proc/42/ns/uts" || nsPaths[specs.PIDNamespace] != "/proc/42/ns/pid" {
		t.Errorf("namespaces %v", nsPaths)
	}
	if spec.Linux.CgroupsPath != "/kubepods/podu/c1" {
		t.Errorf("cgroups path %q", spec.Linux.CgroupsPath)
	}
	r := spec.Linux.Resources
	if *r.CPU.Shares != 256 || *r.CPU.Quota != 5000 || *r.CPU.Period != 10000 || r.CPU.Cpus != "0" || *r.Memory.Limit != 1<<26 {
		t.Errorf("resources %+v %+v", r.CPU, r.Memory)
	}
	if *spec.Process.OOMScoreAdj != 0 {
		t.Errorf("oom_score_adj %d, want clamped to 0", *spec.Process.OOMScoreAdj)
	}
	if caps := spec.Process.Capabilities.Effective; !slices.Equal(caps, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("capabilities %v", caps)
	}
	if spec.Linux.Seccomp == nil || !spec.Process.NoNewPrivileges || !slices.Equal(spec.Linux.MaskedPaths, []string{"/proc/kcore"}) {
		t.Errorf("seccomp %v, no_new_privs %v, masked %v", spec.Linux.Seccomp != nil, spec.Process.NoNewPrivileges, spec.Linux.MaskedPaths)
	}
	if spec.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("pod sysctls not applied: %v", spec.Linux.Sysctl)
	}
	if spec.Annotations[annotationSandboxID] != "s1" || spec.Annotations[annotationContainerType] != "container" {
		t.Errorf("annotations %v", spec.Annotations)
	}
}

func TestContainerSpecRejects(t *testing.T) {
	for name, mutate := range map[string]func(*containerSpecInput){
		"privileged in unprivileged pod": func(in *containerSpecInput) { in.config.Linux.SecurityContext.Privileged = true },
		"relative mount": func(in *containerSpecInput) {
			in.config.Mounts = []*runtimeapi.Mount{{HostPath: "/tmp", ContainerPath: "data"}}
		},
		"group without user": func(in *containerSpecInput) {
			in.config.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: 5}
		},
		"missing seccomp profile": func(in *containerSpecInput) {
			in.config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/kcrid.json"}
		},
		"no command": func(in *containerSpecInput) {
			in.config.Args = nil
			in.imageConfig.Entrypoint, in.imageConfig.Cmd = nil, nil
		},
		"recursive read-only without runtime support": func(in *containerSpecInput) {
			in.config.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "/data", Readonly: true, RecursiveReadOnly: true}}
		},
		"recursive read-only but writable": func(in *containerSpecInput) {
			in.recursiveReadOnly = true
			in.config.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "/data", RecursiveReadOnly: true}}
		},
		"recursive read-only with propagation": func(in *containerSpecInput) {
			in.recursiveReadOnly = true
			in.config.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "/data", Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
		},
	} {
		in := baseInput(t)
		mutate(&in)
		if _, err := applySpec(t, in); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestRecursiveReadOnlyMountSpec(t *testing.T) {
	in := baseInput(t)
	in.recursiveReadOnly = true
	in.config.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "/data", Readonly: true, RecursiveReadOnly: true}}
	spec, err := applySpec(t, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Mounts {
		if m.Destination == "/data" {
			if !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rro") || !slices.Contains(m.Options, "rprivate") {
				t.Errorf("options of a recursive read-only mount: %v, want ro, rro and rprivate", m.Options)
			}
			return
		}
	}
	t.Errorf("no /data mount in %+v", spec.Mounts)
}

func TestPrivilegedSpec(t *testing.T) {
	in := baseInput(t)
	in.sandbox.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	in.config.Linux.SecurityContext.Privileged = true
	spec, err := applySpec(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Linux.MaskedPaths) != 0 || len(spec.Linux.ReadonlyPaths) != 0 || len(spec.Process.Capabilities.Effective) < 30 {
		t.Errorf("privileged: masked %v readonly %v caps %d", spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths, len(spec.Process.Capabilities.Effective))
	}
}

// The pause container's process comes from the image config kcrid holds,
// without reading content or mounting the rootfs (a nil client would fail
// either).
func TestSandboxSpecFromImageConfig(t *testing.T) {
	cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}, Linux: &runtimeapi.LinuxPodSandboxConfig{}}
	image := ocispec.ImageConfig{Entrypoint: []string{"/pause"}, Cmd: []string{"-v"}, Env: []string{"PAUSE=1"}, User: "65535:65535"}
	opts, err := sandboxSpecOpts("s1", cfg, image, "/run/netns/x", oomPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	spec := &oci.Spec{}
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	if err := oci.ApplyOpts(ctx, nil, &containers.Container{ID: "s1"}, spec, opts...); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spec.Process.Args, " "); got != "/pause -v" {
		t.Errorf("args %q, want the entrypoint then the cmd", got)
	}
	if !slices.Contains(spec.Process.Env, "PAUSE=1") || spec.Process.Cwd != "/" {
		t.Errorf("env %v cwd %q", spec.Process.Env, spec.Process.Cwd)
	}
	if spec.Process.User.UID != 65535 || spec.Process.User.GID != 65535 {
		t.Errorf("user %+v, want 65535:65535", spec.Process.User)
	}
}
