package cri

// CRI user namespaces (a pod with NamespaceMode_POD and its own uid/gid
// mappings). What it takes, and how kcrid gets it with runc 1.1:
//
//   - The runtime creates the user namespace: the pause container gets the
//     mappings and a new user namespace; every other container of the pod
//     joins that one (/proc/<pause>/ns/user) and carries the same mappings,
//     which runc needs to know the host uid of the container's root.
//   - The pod's root must be able to use its rootfs. The snapshot is
//     prepared with containerd's uid/gid mapping labels: a snapshotter that
//     remaps by itself (containerd 2.x overlayfs on a kernel with idmapped
//     overlay layers: capability "remap-ids") gets idmapped layers; with one
//     that cannot (containerd 1.6), the containerd client in kcrid makes a
//     chowned copy of the image's layers once per mapping and stacks the
//     container's snapshot on it. A snapshotter that remaps only with
//     idmapped mounts which the kernel lacks ("only-remap-ids" without
//     "remap-ids") can do neither: kcrid then does not offer the feature.
//   - The pod's network namespace must be owned by its user namespace, or
//     mounting sysfs in the container fails with EPERM. So the pause task
//     creates it, and kcrid pins it from the task's pid before CNI ADD (as
//     containerd's CRI does), instead of creating it up front.
//   - Bind mounts (the pod's hosts/hostname/resolv.conf, CRI mounts) are not
//     idmapped: runc before 1.2 cannot. kcrid chowns the pod's own files to
//     the pod's root; other host paths keep their host owners (shown as the
//     overflow id, 65534, inside the pod) and refuse a mount that asks for
//     its own mappings.

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// How a pod's rootfs is made usable by its mapped root.
const (
	rootfsRemapBySnapshotter = "idmapped layers (snapshotter)"
	rootfsRemapByChownCopy   = "chowned copy of the image layers (kcrid)"
)

// Snapshotter capabilities containerd's overlayfs reports about remapping.
const (
	snapshotterCapRemapIDs     = "remap-ids"
	snapshotterCapOnlyRemapIDs = "only-remap-ids"
)

// usernsSupport is what kcrid found at startup about pods with user
// namespaces of their own on this node.
type usernsSupport struct {
	// RootfsRemap is how a rootfs is remapped; empty when unsupported.
	RootfsRemap string `json:"rootfsRemap,omitempty"`
	// Unsupported says why NamespaceMode_POD is refused; empty when it works.
	Unsupported string `json:"unsupported,omitempty"`

	// chownCopies serializes making chowned copies: the containerd client
	// checks for an existing copy, then prepares one under a fixed key, so
	// two pods with the same mapping and image must not race.
	chownCopies sync.Mutex
}

func (u *usernsSupport) supported() bool {
	return u != nil && u.Unsupported == "" && u.RootfsRemap != ""
}

// whyUnsupported is the reason pods cannot have their own user namespace.
func (u *usernsSupport) whyUnsupported() string {
	if u == nil {
		return "not probed"
	}
	return u.Unsupported
}

// rootfs prepares a container's snapshot remapped for the pod's root (see
// the top of this file for how each daemon does it).
func (u *usernsSupport) rootfs(userns *podUserns, id string, image containerd.Image) containerd.NewContainerOpts {
	withSnapshot := containerd.WithNewSnapshot(id, image, containerd.WithUserNSRemapperLabels(userns.uids, userns.gids))
	if u.RootfsRemap != rootfsRemapByChownCopy {
		return withSnapshot
	}
	return func(ctx context.Context, client *containerd.Client, c *containers.Container) error {
		u.chownCopies.Lock()
		defer u.chownCopies.Unlock()
		return withSnapshot(ctx, client, c)
	}
}

// probeUserNamespaces checks the kernel, the runtime and the snapshotter.
// Status advertises user namespaces only when all three can do it, since a
// kubelet relies on that to admit pods with hostUsers: false.
func probeUserNamespaces(ctx context.Context, client *containerd.Client, features *runcFeatures, featuresErr error, snapshotter string) *usernsSupport {
	u := detectUserNamespaces(ctx, client, features, featuresErr, snapshotter)
	if u.supported() {
		log.G(ctx).WithField("rootfs", u.RootfsRemap).Info("pods may have user namespaces of their own")
	} else {
		log.G(ctx).WithField("reason", u.Unsupported).Info("pods cannot have user namespaces of their own")
	}
	return u
}

func detectUserNamespaces(ctx context.Context, client *containerd.Client, features *runcFeatures, featuresErr error, snapshotter string) *usernsSupport {
	if err := kernelSupportsUserNamespaces(); err != nil {
		return &usernsSupport{Unsupported: err.Error()}
	}
	if err := runtimeSupportsUserNamespaces(features, featuresErr); err != nil {
		return &usernsSupport{Unsupported: err.Error()}
	}
	caps, err := client.GetSnapshotterCapabilities(ctx, snapshotter)
	if err != nil {
		return &usernsSupport{Unsupported: fmt.Sprintf("snapshotter %s capabilities: %v", snapshotter, err)}
	}
	return rootfsRemapWith(snapshotter, caps)
}

// rootfsRemapWith decides from a snapshotter's capabilities who remaps a
// pod's rootfs, if anyone can.
func rootfsRemapWith(snapshotter string, caps []string) *usernsSupport {
	switch {
	case slices.Contains(caps, snapshotterCapRemapIDs):
		return &usernsSupport{RootfsRemap: rootfsRemapBySnapshotter}
	case slices.Contains(caps, snapshotterCapOnlyRemapIDs):
		// The containerd client would refuse to chown a copy, and the
		// snapshotter found no idmapped overlay support in the kernel.
		return &usernsSupport{Unsupported: fmt.Sprintf("snapshotter %s remaps ids only with idmapped mounts, which this kernel lacks (its slow_chown option would allow a chowned copy)", snapshotter)}
	default:
		return &usernsSupport{RootfsRemap: rootfsRemapByChownCopy}
	}
}

func kernelSupportsUserNamespaces() error {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return fmt.Errorf("kernel has no user namespaces: %w", err)
	}
	data, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil {
		return fmt.Errorf("read user namespace limit: %w", err)
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || n == 0 {
		return fmt.Errorf("user namespaces are disabled (user.max_user_namespaces = %s)", strings.TrimSpace(string(data)))
	}
	return nil
}

// runtimeSupportsUserNamespaces tells from `runc features` whether runc
// creates user namespaces. Idmapped mounts (runc >= 1.2) are not required:
// kcrid never asks runc for them.
func runtimeSupportsUserNamespaces(features *runcFeatures, featuresErr error) error {
	if featuresErr != nil {
		return featuresErr
	}
	if !features.hasNamespace(string(specs.UserNamespace)) {
		return fmt.Errorf("runc does not create user namespaces")
	}
	return nil
}

// podUserns is a pod's own user namespace: one uid range and one gid range,
// both mapping the container's root.
type podUserns struct {
	uids, gids []specs.LinuxIDMapping
}

// parsePodUserns validates a pod's user namespace options. It returns nil
// for the host's user namespace (no options, or NODE without mappings).
func parsePodUserns(nsOpts *runtimeapi.NamespaceOption) (*podUserns, error) {
	opts := nsOpts.GetUsernsOptions()
	if opts == nil {
		// Not the zero mode (which is POD): a client that sets no options,
		// as kubelets before user namespaces, wants the host's.
		return nil, nil
	}
	switch mode := opts.GetMode(); mode {
	case runtimeapi.NamespaceMode_NODE:
		if len(opts.GetUids()) != 0 || len(opts.GetGids()) != 0 {
			return nil, fmt.Errorf("user namespace mode NODE takes no uid/gid mappings: %w", errdefs.ErrInvalidArgument)
		}
		return nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		// CONTAINER and TARGET have no meaning for a pod's user namespace:
		// every container of a pod shares the pod's.
		return nil, fmt.Errorf("user namespace mode %s is not valid for a pod (NODE or POD): %w", mode, errdefs.ErrInvalidArgument)
	}
	uids, err := parseIDMapping("uid", opts.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := parseIDMapping("gid", opts.GetGids())
	if err != nil {
		return nil, err
	}
	// Host namespaces are owned by the host's user namespace: the pod's
	// root could not mount sysfs/proc/mqueue for them, and would act on
	// the host's network, processes or IPC.
	if kind := hostNamespace(nsOpts); kind != "" {
		return nil, fmt.Errorf("a pod with its own user namespace cannot use the host's %s namespace: %w", kind, errdefs.ErrInvalidArgument)
	}
	return &podUserns{uids: uids, gids: gids}, nil
}

// parseIDMapping accepts exactly one range that maps container id 0 (the
// rootfs is remapped for one range, and the pod's root must be in it).
func parseIDMapping(kind string, mappings []*runtimeapi.IDMapping) ([]specs.LinuxIDMapping, error) {
	if len(mappings) != 1 || mappings[0] == nil {
		return nil, fmt.Errorf("user namespace mode POD needs exactly one %s mapping, got %d: %w", kind, len(mappings), errdefs.ErrInvalidArgument)
	}
	m := mappings[0]
	switch {
	case m.GetContainerId() != 0:
		return nil, fmt.Errorf("%s mapping must map container id 0 (the pod's root), it starts at %d: %w", kind, m.GetContainerId(), errdefs.ErrInvalidArgument)
	case m.GetLength() == 0:
		return nil, fmt.Errorf("%s mapping has length 0: %w", kind, errdefs.ErrInvalidArgument)
	case uint64(m.GetHostId())+uint64(m.GetLength()) > math.MaxUint32:
		return nil, fmt.Errorf("%s mapping %d+%d goes past the last host id: %w", kind, m.GetHostId(), m.GetLength(), errdefs.ErrInvalidArgument)
	}
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// hostNamespace names the first of network, pid and ipc that opts put in
// the host's namespace, or is empty.
func hostNamespace(opts *runtimeapi.NamespaceOption) string {
	switch runtimeapi.NamespaceMode_NODE {
	case opts.GetNetwork():
		return "network"
	case opts.GetPid():
		return "pid"
	case opts.GetIpc():
		return "ipc"
	}
	return ""
}

// podUserNamespace validates a pod's request and checks that this node can
// serve it: Unimplemented when it cannot (Status does not advertise it then).
func (r *runtimeService) podUserNamespace(cfg *runtimeapi.PodSandboxConfig) (*podUserns, error) {
	userns, err := parsePodUserns(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions())
	if err != nil || userns == nil {
		return nil, err
	}
	if !r.userns.supported() {
		return nil, status.Errorf(codes.Unimplemented, "kcrid cannot run pods in a user namespace of their own on this node: %s", r.userns.whyUnsupported())
	}
	return userns, nil
}

// containerUserns is the pod's user namespace, which each of its containers
// joins. A container may repeat the pod's options (the kubelet does) but
// not ask for different ones, nor for host namespaces beside it.
func containerUserns(sandbox *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (*podUserns, error) {
	podOpts := sandbox.GetLinux().GetSecurityContext().GetNamespaceOptions()
	userns, err := parsePodUserns(podOpts)
	if err != nil {
		return nil, fmt.Errorf("pod user namespace: %w", err)
	}
	ctrOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if got := ctrOpts.GetUsernsOptions(); got != nil {
		want := podOpts.GetUsernsOptions()
		sameAsHost := userns == nil && got.GetMode() == runtimeapi.NamespaceMode_NODE && len(got.GetUids())+len(got.GetGids()) == 0
		if !sameAsHost && !proto.Equal(got, want) {
			return nil, fmt.Errorf("container user namespace options differ from its pod's (containers share the pod's): %w", errdefs.ErrInvalidArgument)
		}
	}
	if userns == nil {
		return nil, nil
	}
	if kind := hostNamespace(ctrOpts); kind != "" {
		return nil, fmt.Errorf("a container in a pod with its own user namespace cannot use the host's %s namespace: %w", kind, errdefs.ErrInvalidArgument)
	}
	for _, m := range cfg.GetMounts() {
		if len(m.GetUidMappings())+len(m.GetGidMappings()) > 0 {
			return nil, fmt.Errorf("mount %s asks for idmapping, which runc before 1.2 cannot do: %w", m.GetContainerPath(), errdefs.ErrInvalidArgument)
		}
	}
	return userns, nil
}

// rootRange is the host uid and gid of the pod's root.
func (u *podUserns) rootRange() (uid, gid uint32) { return u.uids[0].HostID, u.gids[0].HostID }

// sandboxSpecOpt puts the pause container in a new user namespace.
func (u *podUserns) sandboxSpecOpt() oci.SpecOpts {
	return u.specOpt("")
}

// containerSpecOpt joins the pause container's user namespace.
func (u *podUserns) containerSpecOpt(sandboxPid uint32) oci.SpecOpts {
	return u.specOpt(fmt.Sprintf("/proc/%d/ns/user", sandboxPid))
}

func (u *podUserns) specOpt(path string) oci.SpecOpts {
	return specOpt(func(s *oci.Spec) error {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace })
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: path})
		s.Linux.UIDMappings = slices.Clone(u.uids)
		s.Linux.GIDMappings = slices.Clone(u.gids)
		return nil
	})
}

// chownSandboxFiles gives the pod's hostname, hosts and resolv.conf to the
// pod's root, who can then write them as host root can in other pods: they
// are bind-mounted without idmapping.
func (u *podUserns) chownSandboxFiles(dir string) error {
	uid, gid := u.rootRange()
	for _, name := range []string{hostnameFile, hostsFile, resolvFile} {
		if err := os.Lchown(filepath.Join(dir, name), int(uid), int(gid)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("give %s to the pod's root: %w", name, err)
		}
	}
	return nil
}

// pinTaskNetNS bind-mounts the network namespace the pause task created
// (owned by the pod's user namespace) under dir, so it outlives the task
// and CNI can attach it before the task starts.
func pinTaskNetNS(dir string, pid uint32) (string, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", fmt.Errorf("create netns dir %s: %w", dir, err)
	}
	ns, err := netns.NewNetNSFromPID(dir, pid)
	if err != nil {
		return "", fmt.Errorf("pin network namespace of pid %d: %w", pid, err)
	}
	return ns.GetPath(), nil
}
