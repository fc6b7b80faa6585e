package cri

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer makes the container record, its rootfs snapshot and its
// OCI spec; the task is created by StartContainer. On error neither a
// record nor a snapshot is left.
func (r *runtimeService) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (_ *runtimeapi.CreateContainerResponse, retErr error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.GetName() == "" {
		return nil, fmt.Errorf("create container: metadata with a name is required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("create container %q: no image given: %w", md.GetName(), errdefs.ErrInvalidArgument)
	}
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("create container %q: pod sandbox: %w", md.GetName(), err)
	}
	sb.mu.Lock()
	ready, sandboxPid := sb.status.Ready, sb.pid
	sb.mu.Unlock()
	if !ready {
		return nil, fmt.Errorf("create container %q: pod sandbox %s is not ready: %w", md.GetName(), sb.meta.ID, errdefs.ErrFailedPrecondition)
	}
	userns, err := containerUserns(sb.config, cfg) // the pod's, if it has one (userns.go)
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.GetName(), err)
	}
	sbmd := sb.config.GetMetadata()
	name := fmt.Sprintf("%s_%s_%s_%s_%d", md.GetName(), sbmd.GetName(), sbmd.GetNamespace(), sbmd.GetUid(), md.GetAttempt())
	id := newID()
	if err := r.containers.reserve(name, id); err != nil {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	defer func() {
		if retErr != nil {
			r.nri.undoCreateContainer(context.WithoutCancel(ctx), sb, id, cfg)
			r.containers.release(name, id)
		}
	}()

	image, imageInfo, err := r.images.ensure(ctx, cfg.GetImage().GetImage(), false)
	if err != nil {
		return nil, fmt.Errorf("create container %q: image %s: %w", name, cfg.GetImage().GetImage(), err)
	}
	// Image volumes are snapshots made before the record that refers to
	// them: a lease over the rest of the create keeps containerd's GC off
	// them until then (NewContainer joins it). A rootfs for a user
	// namespace has a remapped base snapshot as well. Only a plain rootfs
	// goes by the creation lease (creation_lease.go).
	withVolumes := len(imageVolumeIndexes(cfg)) > 0
	plainRootfs := !withVolumes && userns == nil
	createCtx := ctx
	if plainRootfs {
		createCtx = r.creations.context(ctx)
	}
	if withVolumes {
		var releaseLease func(context.Context) error
		ctx, releaseLease, err = r.client.WithLease(ctx)
		if err != nil {
			return nil, fmt.Errorf("create container %q: lease: %w", name, err)
		}
		defer func() { _ = releaseLease(context.WithoutCancel(ctx)) }()
		createCtx = ctx
	}
	volumes, err := r.prepareImageVolumes(ctx, id, cfg)
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	defer func() {
		if retErr != nil {
			r.undoImageVolumes(ctx, id, volumes.config)
		}
	}()
	cfg = volumes.config // with the image volumes' image refs, as ContainerStatus reports them
	meta := containerMeta{
		ID:         id,
		Name:       name,
		SandboxID:  sb.meta.ID,
		ImageName:  imageInfo.Name,
		ImageID:    imageInfo.ID.String(),
		ImageRef:   repoDigest(imageInfo.Name, imageInfo.Target.Digest.String()),
		StopSignal: stopSignal(cfg, imageInfo.Config.StopSignal),
		CreatedAt:  nowNano(),
	}
	// The kubelet passes the image ID and, separately, the name the user
	// wrote; report that name when it denotes the same image.
	if u := cfg.GetImage().GetUserSpecifiedImage(); u != "" {
		if named, err := r.images.lookup(ctx, u); err == nil && named.ID == imageInfo.ID {
			meta.ImageName = named.Name
			meta.ImageRef = repoDigest(named.Name, named.Target.Digest.String())
		}
	}
	if dir, p := sb.config.GetLogDirectory(), cfg.GetLogPath(); dir != "" && p != "" {
		meta.LogPath = filepath.Join(dir, p)
	}
	if meta.Config, err = proto.Marshal(cfg); err != nil {
		return nil, err
	}
	in := containerSpecInput{
		id:           id,
		config:       cfg,
		sandboxID:    sb.meta.ID,
		sandbox:      sb.config,
		sandboxDir:   sb.meta.Dir,
		shmSource:    r.cfg.podShmSource(sb.meta.ID, sb.config),
		netnsPath:    sb.meta.NetNSPath,
		sandboxPid:   sandboxPid,
		imageName:    imageInfo.Name,
		imageConfig:  imageInfo.Config,
		oom:          r.oom,
		imageVolumes: volumes.mounts,
		userns:       userns,

		recursiveReadOnly: r.recursiveReadOnly,
	}
	if target := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetTargetId(); target != "" &&
		cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_TARGET {
		if in.targetPid, err = r.runningPid(ctx, target); err != nil {
			return nil, fmt.Errorf("create container %q: pid namespace target: %w", name, err)
		}
	}
	specOpts, err := containerSpecOpts(in)
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	status := containerStatus{}
	snapshotter := r.images.images.Snapshotter()
	var rootfsMounts []mount.Mount
	rootfs := withRootfs(id, snapshotter, imageInfo, image, &rootfsMounts)
	if userns != nil {
		rootfs = r.userns.rootfs(userns, id, image)
	}
	defer r.nri.blockPluginSync(ctx).Unblock() // until the container is in the index
	_, err = r.client.NewContainer(createCtx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(snapshotter),
		rootfs,
		containerd.WithRuntime(runcRuntime, r.runtimeOptions()),
		containerd.WithNewSpec(specOpts...),
		r.nri.adjustContainer(sb, meta, cfg), // NRI CreateContainer, on the finished spec
		containerd.WithContainerLabels(recordLabels(cfg.GetLabels(), map[string]string{labelKind: kindContainer, labelSandbox: sb.meta.ID})),
		withJSONExtension(extMeta, typeMeta, meta),
		withJSONExtension(extStatus, typeStatus, status),
		withImageVolumeRefs(volumes),
		withSandboxRecord(sb.meta),
	)
	if plainRootfs {
		defer r.creations.release(ctx, id)
	}
	if err != nil {
		// NewContainer made the snapshot before the spec or record failed.
		_ = r.client.SnapshotService(snapshotter).Remove(context.WithoutCancel(ctx), id)
		if errors.Is(err, oci.ErrNoUsersFound) || errors.Is(err, oci.ErrNoGroupsFound) {
			err = fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	r.containers.add(id, &container{meta: meta, config: cfg, status: status, exited: make(chan struct{}), rootfs: rootfsMounts})
	r.nri.postCreateContainer(ctx, sb, id)
	r.publishContainerEvent(ctx, id, sb.meta.ID, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// stopSignal is the container's stop signal, else the image's.
func stopSignal(cfg *runtimeapi.ContainerConfig, image string) string {
	if s := cfg.GetStopSignal(); s != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return s.String()
	}
	return image
}

// repoDigest is "<repository>@<digest>" for an image name.
func repoDigest(name, digest string) string {
	repo, _, hasDigest := strings.Cut(name, "@")
	if !hasDigest {
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
	}
	return repo + "@" + digest
}

// runningPid is the main pid of a running container.
func (r *runtimeService) runningPid(ctx context.Context, id string) (uint32, error) {
	c, err := r.containers.get(id)
	if err != nil {
		return 0, err
	}
	_, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil {
		return 0, err
	}
	if task == nil {
		return 0, fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	return task.Pid(), nil
}
