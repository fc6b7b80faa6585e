package cri

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// NRI (the Node Resource Interface) lets plugins follow the life of pods
// and containers and adjust containers as they are created: kcrid relays
// each CRI lifecycle step to the plugins connected on its NRI socket (or
// launched from PluginDir) through containerd/nri's adaptation package.
//
// What kcrid guarantees plugins:
//   - A sandbox or container is not visible through the CRI while its
//     RunPodSandbox or CreateContainer hook runs; a hook error fails the
//     RPC and undoes everything (plugins that saw the creation are told
//     it stopped and was removed).
//   - Each object gets at most one Stop and one Remove event, Stop first,
//     however it ends (StopContainer, StopPodSandbox, its own exit,
//     removal); the relayed map below remembers what was relayed.
//   - No container is lost to a plugin that connects while containers are
//     being created: creation holds off plugin synchronization
//     (blockPluginSync) from its hook until it is in the index, so a new
//     plugin either finds it in Synchronize or gets its CreateContainer.
//
// Every method is a no-op on a nil *nriHooks (NRI disabled), so the
// lifecycle code calls them unconditionally.

// NRIConfig configures NRI in kcrid.
type NRIConfig struct {
	// Enable turns NRI on. It is off by default: a plugin can change
	// every container kcrid creates, so a node admin opts in.
	Enable bool
	// SocketPath is where external plugins connect; empty means
	// DefaultNRISocket.
	SocketPath string
	// PluginDir holds plugins kcrid launches itself at startup (named
	// <index>-<name>); empty means DefaultNRIPluginDir.
	PluginDir string
	// PluginConfigDir holds the configs of launched plugins; empty means
	// DefaultNRIPluginConfigDir.
	PluginConfigDir string
	// RegistrationTimeout bounds a plugin's registration, RequestTimeout
	// each hook call; 0 means NRI's defaults (5s, 2s). A plugin that
	// misses the deadline is disconnected. containerd/nri keeps these per
	// process, not per server.
	RegistrationTimeout time.Duration
	RequestTimeout      time.Duration
}

// NRI defaults, the same paths containerd uses so existing plugins find
// kcrid where they look for a runtime.
const (
	DefaultNRISocket          = adaptation.DefaultSocketPath
	DefaultNRIPluginDir       = adaptation.DefaultPluginPath
	DefaultNRIPluginConfigDir = adaptation.DefaultPluginConfigPath
)

// nriPhase is the last lifecycle event relayed for an object.
type nriPhase int

const (
	nriCreated nriPhase = iota + 1
	nriStarted
	nriStopped
)

// nriHooks relays kcrid's lifecycle to NRI plugins.
type nriHooks struct {
	rt         *runtimeService
	adaptation *adaptation.Adaptation

	// mu makes deciding and relaying an event one step, so a Stop from an
	// exit and one from StopContainer cannot both go out.
	mu      sync.Mutex
	relayed map[string]nriPhase // by sandbox or container ID, until removed
}

// startNRI starts NRI for rt when enabled (nil otherwise): it launches the
// plugins in PluginDir, synchronizes them with the recovered index and
// starts accepting plugin connections.
func startNRI(cfg NRIConfig, rt *runtimeService) (*nriHooks, error) {
	if !cfg.Enable {
		return nil, nil
	}
	opts := []adaptation.Option{
		adaptation.WithSocketPath(orDefault(cfg.SocketPath, DefaultNRISocket)),
		adaptation.WithPluginPath(orDefault(cfg.PluginDir, DefaultNRIPluginDir)),
		adaptation.WithPluginConfigPath(orDefault(cfg.PluginConfigDir, DefaultNRIPluginConfigDir)),
	}
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout)
	}
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	h := &nriHooks{rt: rt, relayed: map[string]nriPhase{}}
	a, err := adaptation.New(runtimeName, Version, h.synchronize, h.updateFromPlugin, opts...)
	if err != nil {
		return nil, fmt.Errorf("set up NRI: %w", err)
	}
	h.adaptation = a
	if err := a.Start(); err != nil {
		a.Stop()
		return nil, fmt.Errorf("start NRI on %s: %w", orDefault(cfg.SocketPath, DefaultNRISocket), err)
	}
	return h, nil
}

func orDefault(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// stop disconnects every plugin and closes the socket.
func (h *nriHooks) stop() {
	if h == nil {
		return
	}
	h.adaptation.Stop()
}

// nriInitiatedKey marks a context of an operation a plugin asked for
// (an update or eviction), which must not be relayed back to plugins nor
// wait for plugin synchronization, which may be what is running it.
type nriInitiatedKey struct{}

func nriInitiated(ctx context.Context) context.Context {
	return context.WithValue(ctx, nriInitiatedKey{}, true)
}

func isNRIInitiated(ctx context.Context) bool {
	v, _ := ctx.Value(nriInitiatedKey{}).(bool)
	return v
}

// blockPluginSync holds off plugin synchronization until Unblock, so an
// object being created is either listed to a new plugin or relayed to it.
// Unblock is safe on the nil it returns when there is nothing to block.
func (h *nriHooks) blockPluginSync(ctx context.Context) *adaptation.PluginSyncBlock {
	if h == nil || isNRIInitiated(ctx) {
		return nil
	}
	return h.adaptation.BlockPluginSync()
}

// markStopped records that the Stop of id goes out and reports whether
// it should: once per object, and only for objects plugins were told
// about. Callers hold mu.
func (h *nriHooks) markStopped(id string) bool {
	if phase, known := h.relayed[id]; !known || phase == nriStopped {
		return false
	}
	h.relayed[id] = nriStopped
	return true
}

// runPodSandbox relays a new sandbox, before it is visible. On error the
// caller undoes the sandbox; plugins that saw it are told it is gone.
func (h *nriHooks) runPodSandbox(ctx context.Context, sb *sandbox) error {
	if h == nil {
		return nil
	}
	pod := nriPodSandbox(sb)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.relayed[sb.meta.ID] = nriStarted
	if err := h.adaptation.RunPodSandbox(ctx, &adaptation.RunPodSandboxRequest{Pod: pod}); err != nil {
		h.stopAndRemovePodLocked(context.WithoutCancel(ctx), pod)
		return fmt.Errorf("NRI RunPodSandbox: %w", err)
	}
	return nil
}

// stopPodSandbox relays a sandbox stop, once; its containers are stopped
// already. Plugin errors are logged: the sandbox is down either way.
func (h *nriHooks) stopPodSandbox(ctx context.Context, sb *sandbox) {
	if h == nil {
		return
	}
	pod := nriPodSandbox(sb)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.markStopped(sb.meta.ID) {
		return
	}
	if err := h.adaptation.StopPodSandbox(ctx, &adaptation.StopPodSandboxRequest{Pod: pod}); err != nil {
		log.G(ctx).WithError(err).WithField("sandbox", sb.meta.ID).Warn("NRI StopPodSandbox")
	}
}

// removePodSandbox relays a removed sandbox (after its containers').
func (h *nriHooks) removePodSandbox(ctx context.Context, sb *sandbox) {
	if h == nil {
		return
	}
	pod := nriPodSandbox(sb)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, known := h.relayed[sb.meta.ID]; !known {
		return
	}
	h.stopAndRemovePodLocked(ctx, pod)
}

func (h *nriHooks) stopAndRemovePodLocked(ctx context.Context, pod *api.PodSandbox) {
	if h.markStopped(pod.GetId()) {
		if err := h.adaptation.StopPodSandbox(ctx, &adaptation.StopPodSandboxRequest{Pod: pod}); err != nil {
			log.G(ctx).WithError(err).WithField("sandbox", pod.GetId()).Warn("NRI StopPodSandbox")
		}
	}
	delete(h.relayed, pod.GetId())
	if err := h.adaptation.RemovePodSandbox(ctx, &adaptation.RemovePodSandboxRequest{Pod: pod}); err != nil {
		log.G(ctx).WithError(err).WithField("sandbox", pod.GetId()).Warn("NRI RemovePodSandbox")
	}
}

// createContainer relays a container about to be created and returns the
// plugins' adjustment of its spec. Updates and evictions of other
// containers that plugins ask for are carried out once the hook is done.
func (h *nriHooks) createContainer(ctx context.Context, sb *sandbox, ctr *api.Container) (*api.ContainerAdjustment, error) {
	pod := nriPodSandbox(sb)
	h.mu.Lock()
	h.relayed[ctr.GetId()] = nriCreated
	resp, err := h.adaptation.CreateContainer(ctx, &adaptation.CreateContainerRequest{Pod: pod, Container: ctr})
	h.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("NRI CreateContainer: %w", err)
	}
	h.evict(ctx, resp.GetEvict())
	h.applyUpdates(ctx, resp.GetUpdate())
	return resp.GetAdjust(), nil
}

// undoCreateContainer tells plugins that saw CreateContainer for id that
// the creation failed: Stop, then Remove, as containerd does.
func (h *nriHooks) undoCreateContainer(ctx context.Context, sb *sandbox, id string, cfg *runtimeapi.ContainerConfig) {
	if h == nil {
		return
	}
	ctr := &api.Container{Id: id, PodSandboxId: sb.meta.ID, Name: cfg.GetMetadata().GetName(), State: api.ContainerState_CONTAINER_STOPPED}
	h.stopAndRemoveContainer(ctx, nriPodSandbox(sb), ctr)
}

// postCreateContainer relays a created container, now in the index.
func (h *nriHooks) postCreateContainer(ctx context.Context, sb *sandbox, id string) {
	if h == nil {
		return
	}
	c, err := h.rt.containers.get(id)
	if err != nil {
		return
	}
	req := &adaptation.PostCreateContainerRequest{Pod: nriPodSandbox(sb), Container: h.container(ctx, c)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.adaptation.PostCreateContainer(ctx, req); err != nil {
		log.G(ctx).WithError(err).WithField("container", id).Warn("NRI PostCreateContainer")
	}
}

// startContainer relays a container about to start; an error fails the
// start.
func (h *nriHooks) startContainer(ctx context.Context, sb *sandbox, c *container) error {
	if h == nil {
		return nil
	}
	req := &adaptation.StartContainerRequest{Pod: nriPodSandbox(sb), Container: h.container(ctx, c)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.relayed[c.meta.ID] = nriStarted
	if err := h.adaptation.StartContainer(ctx, req); err != nil {
		return fmt.Errorf("NRI StartContainer: %w", err)
	}
	return nil
}

// postStartContainer relays a started container.
func (h *nriHooks) postStartContainer(ctx context.Context, sb *sandbox, c *container) {
	if h == nil {
		return
	}
	req := &adaptation.PostStartContainerRequest{Pod: nriPodSandbox(sb), Container: h.container(ctx, c)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.adaptation.PostStartContainer(ctx, req); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("NRI PostStartContainer")
	}
}

// stopContainer relays the stop of c once it no longer runs (a stop that
// failed relays nothing). Plugins' updates to other containers follow.
func (h *nriHooks) stopContainer(ctx context.Context, c *container) {
	if h == nil {
		return
	}
	c.mu.Lock()
	running := c.status.state() == runtimeapi.ContainerState_CONTAINER_RUNNING
	c.mu.Unlock()
	if running {
		return
	}
	h.relayStop(ctx, c)
}

// notifyContainerExit relays the exit of c without blocking the caller
// (the event loop): plugins may be slow, and exits must keep flowing.
func (h *nriHooks) notifyContainerExit(c *container) {
	if h == nil {
		return
	}
	ctx := namespaces.WithNamespace(context.Background(), h.rt.cfg.Namespace)
	go func() {
		// A start in flight holds c.op until its PostStart went out; an
		// exit can beat it, and plugins should hear PostStart first.
		c.op.Lock()
		c.op.Unlock() //nolint:staticcheck // a barrier, not a critical section
		// Wait out a plugin being synchronized, so it hears of this exit.
		defer h.blockPluginSync(ctx).Unblock()
		if _, err := h.rt.containers.get(c.meta.ID); err != nil {
			return // removed meanwhile: RemoveContainer relayed the stop
		}
		h.relayStop(ctx, c)
	}()
}

func (h *nriHooks) relayStop(ctx context.Context, c *container) {
	sb := h.sandboxOf(c)
	ctr := h.container(ctx, c)
	h.mu.Lock()
	if !h.markStopped(c.meta.ID) {
		h.mu.Unlock()
		return
	}
	resp, err := h.adaptation.StopContainer(ctx, &adaptation.StopContainerRequest{Pod: sb, Container: ctr})
	h.mu.Unlock()
	if err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("NRI StopContainer")
		return
	}
	h.applyUpdates(ctx, resp.GetUpdate())
}

// removeContainer relays a removed container (Stop first if not yet).
func (h *nriHooks) removeContainer(ctx context.Context, c *container) {
	if h == nil {
		return
	}
	h.stopAndRemoveContainer(ctx, h.sandboxOf(c), h.container(ctx, c))
}

func (h *nriHooks) stopAndRemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, known := h.relayed[ctr.GetId()]; !known {
		return
	}
	if h.markStopped(ctr.GetId()) {
		if _, err := h.adaptation.StopContainer(ctx, &adaptation.StopContainerRequest{Pod: pod, Container: ctr}); err != nil {
			log.G(ctx).WithError(err).WithField("container", ctr.GetId()).Warn("NRI StopContainer")
		}
	}
	delete(h.relayed, ctr.GetId())
	if err := h.adaptation.RemoveContainer(ctx, &adaptation.RemoveContainerRequest{Pod: pod, Container: ctr}); err != nil {
		log.G(ctx).WithError(err).WithField("container", ctr.GetId()).Warn("NRI RemoveContainer")
	}
}

// updateContainer relays a CRI resource update and returns the resources
// to apply: the request with whatever plugins changed. An update a plugin
// asked for itself is not relayed back.
func (h *nriHooks) updateContainer(ctx context.Context, c *container, res *runtimeapi.LinuxContainerResources) (*runtimeapi.LinuxContainerResources, error) {
	if h == nil || isNRIInitiated(ctx) {
		return res, nil
	}
	req := &adaptation.UpdateContainerRequest{
		Pod:            h.sandboxOf(c),
		Container:      h.container(ctx, c),
		LinuxResources: nriResourcesFromCRI(res),
	}
	h.mu.Lock()
	resp, err := h.adaptation.UpdateContainer(ctx, req)
	h.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("NRI UpdateContainer: %w", err)
	}
	h.evict(ctx, resp.GetEvict())
	var own *api.LinuxResources
	var others []*api.ContainerUpdate
	for _, u := range resp.GetUpdate() {
		if u.GetContainerId() == c.meta.ID {
			own = u.GetLinux().GetResources()
			continue
		}
		others = append(others, u)
	}
	h.applyUpdates(ctx, others)
	return mergeNRIResources(res, own), nil
}

// postUpdateContainer relays an applied resource update.
func (h *nriHooks) postUpdateContainer(ctx context.Context, c *container) {
	if h == nil || isNRIInitiated(ctx) {
		return
	}
	req := &adaptation.PostUpdateContainerRequest{Pod: h.sandboxOf(c), Container: h.container(ctx, c)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.adaptation.PostUpdateContainer(ctx, req); err != nil {
		log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("NRI PostUpdateContainer")
	}
}

// synchronize is the runtime side of a plugin's Synchronize: it lists
// every sandbox and every container that has not exited. It also runs
// once at startup, which seeds relayed with what recovery found, so
// objects from before a restart still get their Stop and Remove.
func (h *nriHooks) synchronize(ctx context.Context, sync adaptation.SyncCB) error {
	ctx = namespaces.WithNamespace(ctx, h.rt.cfg.Namespace)
	var pods []*api.PodSandbox
	var ctrs []*api.Container
	h.mu.Lock()
	for _, sb := range h.rt.sandboxes.list() {
		sb.mu.Lock()
		phase := nriStarted
		if !sb.status.Ready {
			phase = nriStopped
		}
		sb.mu.Unlock()
		h.seed(sb.meta.ID, phase)
		pods = append(pods, nriPodSandbox(sb))
	}
	for _, c := range h.rt.containers.list() {
		c.mu.Lock()
		state := c.status.state()
		c.mu.Unlock()
		switch state {
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			h.seed(c.meta.ID, nriStopped)
			continue
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			h.seed(c.meta.ID, nriStarted)
		default:
			h.seed(c.meta.ID, nriCreated)
		}
		ctrs = append(ctrs, h.container(ctx, c))
	}
	updates, err := sync(ctx, pods, ctrs)
	h.mu.Unlock()
	if err != nil {
		return err
	}
	h.applyUpdates(ctx, updates)
	return nil
}

// seed records phase for an object plugins have not heard of; what was
// relayed already stays, so a pending Stop is not lost.
func (h *nriHooks) seed(id string, phase nriPhase) {
	if _, known := h.relayed[id]; !known {
		h.relayed[id] = phase
	}
}

// updateFromPlugin applies updates a plugin asks for on its own and
// returns those that failed.
func (h *nriHooks) updateFromPlugin(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	ctx = namespaces.WithNamespace(ctx, h.rt.cfg.Namespace)
	return h.applyUpdates(ctx, updates), nil
}

// applyUpdates changes the resources of containers as plugins asked,
// through UpdateContainerResources (not relayed back to plugins). It
// returns the updates that failed; failures are logged.
func (h *nriHooks) applyUpdates(ctx context.Context, updates []*api.ContainerUpdate) []*api.ContainerUpdate {
	ctx = nriInitiated(ctx)
	var failed []*api.ContainerUpdate
	for _, u := range updates {
		if u == nil {
			continue
		}
		_, err := h.rt.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: u.GetContainerId(),
			Linux:       mergeNRIResources(nil, u.GetLinux().GetResources()),
		})
		if err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("container", u.GetContainerId()).Warn("NRI container update")
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
			}
		}
	}
	return failed
}

// evict stops the containers plugins want gone; the kubelet sees them
// exited and acts on its own policy.
func (h *nriHooks) evict(ctx context.Context, evictions []*api.ContainerEviction) {
	for _, e := range evictions {
		c, err := h.rt.containers.get(e.GetContainerId())
		if err != nil {
			continue
		}
		log.G(ctx).WithField("container", c.meta.ID).WithField("reason", e.GetReason()).Info("NRI plugin evicts container")
		if err := h.rt.stopContainer(nriInitiated(ctx), c, 0); err != nil {
			log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("NRI eviction")
		}
	}
}

// sandboxOf is the NRI view of c's sandbox; only the ID when the sandbox
// is gone from the index.
func (h *nriHooks) sandboxOf(c *container) *api.PodSandbox {
	sb, err := h.rt.sandboxes.get(c.meta.SandboxID)
	if err != nil || sb.meta.ID != c.meta.SandboxID {
		return &api.PodSandbox{Id: c.meta.SandboxID}
	}
	return nriPodSandbox(sb)
}
