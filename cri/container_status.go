package cri

import (
	"context"
	"encoding/json"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus reports state, times, exit code and reason, image, mounts
// and log path; verbose adds the sandbox ID and log writer under "info".
func (r *runtimeService) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	cfg := c.config
	status := &runtimeapi.ContainerStatus{
		Id:          c.meta.ID,
		Metadata:    cfg.GetMetadata(),
		State:       st.state(),
		CreatedAt:   c.meta.CreatedAt,
		StartedAt:   st.StartedAt,
		FinishedAt:  st.FinishedAt,
		ExitCode:    st.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: c.meta.ImageName, Annotations: cfg.GetImage().GetAnnotations()},
		ImageRef:    c.meta.ImageRef,
		ImageId:     c.meta.ImageID,
		Reason:      st.Reason,
		Message:     st.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      cfg.GetMounts(),
		LogPath:     c.meta.LogPath,
	}
	if sig, ok := runtimeapi.Signal_value[strings.ToUpper(c.meta.StopSignal)]; ok {
		status.StopSignal = runtimeapi.Signal(sig)
	}
	status.User = r.containerUser(ctx, c)
	if res := cfg.GetLinux().GetResources(); res != nil {
		status.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: status}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"sandboxID": c.meta.SandboxID,
			"logWriter": r.cfg.LogWriter,
			"config":    cfg,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// containerUser is the identity the container's processes run with, read
// once from its spec.
func (r *runtimeService) containerUser(ctx context.Context, c *container) *runtimeapi.ContainerUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.user != nil {
		return c.user
	}
	ctr, err := r.client.LoadContainer(ctx, c.meta.ID)
	if err != nil {
		return nil
	}
	spec, err := ctr.Spec(ctx)
	if err != nil || spec.Process == nil {
		return nil
	}
	u := spec.Process.User
	lu := &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID)}
	for _, g := range u.AdditionalGids {
		lu.SupplementalGroups = append(lu.SupplementalGroups, int64(g))
	}
	c.user = &runtimeapi.ContainerUser{Linux: lu}
	return c.user
}
