package cri

import (
	"context"
	"fmt"
	"os"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/opencontainers/image-spec/identity"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/network"
)

// RunPodSandbox creates the pod's network namespace, attaches it through
// CNI, writes the pod's hostname/hosts/resolv.conf, mounts its /dev/shm
// and starts the pause container. Whatever fails, everything done before
// is undone: no netns, IP, container, snapshot or sandbox dir stays behind.
func (r *runtimeService) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, retErr error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.GetName() == "" || md.GetNamespace() == "" {
		return nil, fmt.Errorf("run pod sandbox: metadata with name and namespace is required: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkRuntimeHandler(req.GetRuntimeHandler()); err != nil {
		return nil, err
	}
	// A pod asking for its own user namespace gets one or an error, never
	// silently the host's (userns.go).
	userns, err := r.podUserNamespace(cfg)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	name := sandboxName(md)
	id := newID()
	if err := r.sandboxes.reserve(name, id); err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
	}
	var undo []func(context.Context)
	defer func() {
		if retErr == nil {
			return
		}
		cleanupCtx := context.WithoutCancel(ctx)
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i](cleanupCtx)
		}
		r.sandboxes.release(name, id)
	}()

	image, imageInfo, err := r.images.ensure(ctx, r.cfg.SandboxImage, true)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: sandbox image %s: %w", name, r.cfg.SandboxImage, err)
	}
	meta := sandboxMeta{
		ID:             id,
		Name:           name,
		RuntimeHandler: req.GetRuntimeHandler(),
		Dir:            r.cfg.sandboxDir(id),
		CreatedAt:      nowNano(),
		Record:         r.sandboxRecords,
	}
	meta.Config, err = proto.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	hostNetwork := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
	var pendingNetwork *network.PendingAttach
	// A pod with its own user namespace gets its network namespace from
	// the pause task below: it must be owned by that user namespace.
	if !hostNetwork && userns == nil {
		meta.NetNSPath, err = network.NewNamespace(r.cfg.netnsDir())
		if err != nil {
			return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
		}
		// CNI ADD runs while the pause container and task are made; the
		// task starts once the network is in place.
		pendingNetwork = r.startPodNetwork(ctx, id, cfg, meta.NetNSPath, &undo)
	}
	undo = append(undo, func(context.Context) { _ = os.RemoveAll(meta.Dir) })
	if !hostIPC(cfg) {
		if err := mountSandboxShm(r.cfg.sandboxShmDir(id)); err != nil {
			return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
		}
	}
	undo = append(undo, func(ctx context.Context) {
		if err := r.cfg.removeSandboxState(id); err != nil {
			log.G(ctx).WithError(err).Warn("undo pod /dev/shm")
		}
	})

	specOpts, err := sandboxSpecOpts(id, cfg, imageInfo.Config, meta.NetNSPath, r.oom)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
	}
	var rootfsMounts []mount.Mount
	rootfs := withRootfs(id, r.images.images.Snapshotter(), imageInfo, image, &rootfsMounts)
	spare, haveSpare := spareRootfs{}, false
	switch {
	case userns != nil:
		specOpts = append(specOpts, userns.sandboxSpecOpt())
		rootfs = r.userns.rootfs(userns, id, image)
	case len(imageInfo.DiffIDs) > 0:
		// A removed pod's pause rootfs, if one is kept (sandbox_rootfs_pool.go).
		if spare, haveSpare = r.pauseRootfs.take(identity.ChainID(imageInfo.DiffIDs).String()); haveSpare {
			rootfs = withSpareRootfs(r.images.images.Snapshotter(), spare, imageInfo.Name)
			rootfsMounts = spare.mounts
		}
	}
	status := sandboxStatus{Ready: true}
	// A plain rootfs goes by the creation lease (creation_lease.go); one
	// for a user namespace has a remapped base snapshot as well, which
	// NewContainer's own lease covers.
	createCtx := ctx
	if userns == nil {
		createCtx = r.creations.context(ctx)
		if !haveSpare {
			defer r.creations.release(ctx, id)
		}
	}
	ctr, err := r.client.NewContainer(createCtx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(r.images.images.Snapshotter()),
		rootfs,
		containerd.WithRuntime(runcRuntime, r.runtimeOptions()),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(recordLabels(cfg.GetLabels(), map[string]string{labelKind: kindSandbox})),
		withJSONExtension(extMeta, typeMeta, meta),
		withJSONExtension(extStatus, typeStatus, status),
	)
	if err != nil {
		if haveSpare {
			r.pauseRootfs.giveBack(spare)
		} else {
			_ = r.client.SnapshotService(r.images.images.Snapshotter()).Remove(context.WithoutCancel(ctx), id)
		}
		return nil, fmt.Errorf("run pod sandbox %q: create pause container: %w", name, err)
	}
	undo = append(undo, func(ctx context.Context) {
		if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Warn("undo pause container")
		}
	})
	pid, taskIO, err := r.createTask(ctx, id, rootfsMounts, cio.NullIO)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: create pause task: %w", name, err)
	}
	undo = append(undo, func(ctx context.Context) { r.deleteCreatedTask(ctx, id, taskIO) })
	if userns != nil {
		// The created (not yet started) task made the network namespace
		// inside the pod's user namespace; pin it and attach CNI to it.
		if meta.NetNSPath, err = pinTaskNetNS(r.cfg.netnsDir(), pid); err != nil {
			return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
		}
		pendingNetwork = r.startPodNetwork(ctx, id, cfg, meta.NetNSPath, &undo)
	}
	// The pause process needs neither the pod's IPs, nor its files, nor
	// its sandbox record: it starts while they are written.
	if meta.Record {
		undo = append(undo, func(ctx context.Context) {
			if err := r.deleteSandboxRecord(ctx, id); err != nil {
				log.G(ctx).WithError(err).Warn("undo sandbox record")
			}
		})
	}
	filesDone := make(chan error, 1)
	go func() {
		err := r.recordPodNetwork(ctx, &meta, cfg, pendingNetwork, hostNetwork, userns)
		if err == nil && meta.Record {
			err = r.createSandboxRecord(ctx, id)
		}
		filesDone <- err
	}()
	startErr := r.startCreatedTask(ctx, id)
	if err := <-filesDone; err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
	}
	if startErr != nil {
		return nil, fmt.Errorf("run pod sandbox %q: start pause: %w", name, startErr)
	}
	sb := &sandbox{meta: meta, config: cfg, pid: pid, status: status}
	defer r.nri.blockPluginSync(ctx).Unblock() // until sb is in the index
	if err := r.nri.runPodSandbox(ctx, sb); err != nil {
		return nil, fmt.Errorf("run pod sandbox %q: %w", name, err)
	}
	r.sandboxes.add(id, sb)
	r.publishSandboxEvent(ctx, id, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// recordPodNetwork waits for the pod's CNI ADD (if any), records its IPs
// in meta and in the sandbox's record, and writes the files its containers
// mount (hostname, hosts, resolv.conf).
func (r *runtimeService) recordPodNetwork(ctx context.Context, meta *sandboxMeta, cfg *runtimeapi.PodSandboxConfig, pending *network.PendingAttach, hostNetwork bool, userns *podUserns) error {
	if pending != nil {
		result, err := pending.Wait()
		if err != nil {
			return err
		}
		meta.IPs = result.IPs
		if err := r.updateExtension(ctx, meta.ID, extMeta, typeMeta, *meta); err != nil {
			return fmt.Errorf("record pod IPs: %w", err)
		}
	}
	if err := writeSandboxFiles(meta.Dir, cfg, hostNetwork, meta.IPs); err != nil {
		return err
	}
	if userns != nil {
		return userns.chownSandboxFiles(meta.Dir)
	}
	return nil
}

// startPodNetwork starts CNI ADD for the pod in the network namespace at
// nsPath, which it now owns: the undo steps it adds run CNI DEL (once ADD
// is over) and remove the namespace.
func (r *runtimeService) startPodNetwork(ctx context.Context, id string, cfg *runtimeapi.PodSandboxConfig, nsPath string, undo *[]func(context.Context)) *network.PendingAttach {
	*undo = append(*undo, func(ctx context.Context) {
		if err := r.cfg.removePodNetns(nsPath); err != nil {
			log.G(ctx).WithError(err).Warn("undo netns")
		}
	})
	if err := r.cfg.writeNetnsOwner(nsPath, id, cfg); err != nil {
		// Without it only a crash during CNI ADD costs more (an address
		// the next kcrid cannot give back): not worth failing the pod.
		log.G(ctx).WithError(err).Warn("record the owner of a pod's netns")
	}
	attach := attachOptions(id, cfg)
	pending := r.network.StartAttach(ctx, id, nsPath, attach)
	*undo = append(*undo, func(ctx context.Context) {
		if _, err := pending.Wait(); err != nil {
			return // a failed ADD has released what it held
		}
		if err := r.network.Detach(ctx, id, nsPath, attach); err != nil {
			log.G(ctx).WithError(err).Warn("undo cni add")
		}
	})
	return pending
}

// sandboxName is the unique CRI name of a pod sandbox.
func sandboxName(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}

// checkRuntimeHandler accepts the default handler and "runc", the only
// runtime kcrid configures.
func checkRuntimeHandler(h string) error {
	if h == "" || h == "runc" {
		return nil
	}
	return fmt.Errorf("runtime handler %q is not configured (kcrid knows \"runc\"): %w", h, errdefs.ErrInvalidArgument)
}

// attachOptions are the CNI inputs for a pod: port mappings and the
// K8S_POD_* args plugins expect.
func attachOptions(id string, cfg *runtimeapi.PodSandboxConfig) network.AttachOptions {
	md := cfg.GetMetadata()
	opts := network.AttachOptions{Labels: map[string]string{
		"K8S_POD_NAMESPACE":          md.GetNamespace(),
		"K8S_POD_NAME":               md.GetName(),
		"K8S_POD_INFRA_CONTAINER_ID": id,
		"K8S_POD_UID":                md.GetUid(),
		"IgnoreUnknown":              "1",
	}}
	for _, pm := range cfg.GetPortMappings() {
		opts.PortMappings = append(opts.PortMappings, network.PortMapping{
			HostPort:      pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(),
			Protocol:      strings.ToLower(pm.GetProtocol().String()),
			HostIP:        pm.GetHostIp(),
		})
	}
	return opts
}

// withJSONExtension sets a JSON extension on the container record.
func withJSONExtension(name, typeURL string, v any) containerd.NewContainerOpts {
	return func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
		return setExtension(c, name, typeURL, v)
	}
}
