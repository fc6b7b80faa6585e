package cri

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/network"
)

// StopPodSandbox kills the pod's containers and its pause process,
// unmounts the pod's /dev/shm, runs CNI DEL and removes the network
// namespace. Unknown IDs and repeated calls succeed.
func (r *runtimeService) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (r *runtimeService) stopSandbox(ctx context.Context, sb *sandbox) error {
	for _, c := range r.containersOf(sb.meta.ID) {
		if err := r.stopContainer(ctx, c, 0); err != nil {
			return fmt.Errorf("stop pod sandbox %s: %w", sb.meta.ID, err)
		}
	}
	_, task, err := r.loadTask(ctx, sb.meta.ID)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop pod sandbox %s: %w", sb.meta.ID, err)
	}
	if task != nil {
		if _, err := killAndWait(ctx, task, syscall.SIGKILL, 0); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop pod sandbox %s: stop pause: %w", sb.meta.ID, err)
		}
	}
	r.recordSandboxExit(ctx, sb)
	r.nri.stopPodSandbox(ctx, sb) // containers are down; the network not yet
	if err := unmountSandboxShm(r.cfg.sandboxShmDir(sb.meta.ID)); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", sb.meta.ID, err)
	}

	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.status.NetworkDown || sb.meta.NetNSPath == "" {
		return nil
	}
	err = r.network.Detach(ctx, sb.meta.ID, sb.meta.NetNSPath, attachOptions(sb.meta.ID, sb.config))
	switch {
	case errors.Is(err, network.ErrNoConfig):
		// Without a config CNI DEL cannot run at all; refusing would leave
		// the pod unremovable forever.
		log.G(ctx).WithError(err).WithField("sandbox", sb.meta.ID).Warn("skipping CNI DEL: no network config")
	case err != nil:
		return fmt.Errorf("stop pod sandbox %s: %w", sb.meta.ID, err)
	}
	if err := r.cfg.removePodNetns(sb.meta.NetNSPath); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", sb.meta.ID, err)
	}
	sb.status.NetworkDown = true
	if err := r.updateStatus(ctx, sb.meta.ID, sb.status); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop pod sandbox %s: persist: %w", sb.meta.ID, err)
	}
	return nil
}

// containersOf lists the containers of a sandbox.
func (r *runtimeService) containersOf(sandboxID string) []*container {
	var out []*container
	for _, c := range r.containers.list() {
		if c.meta.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}
