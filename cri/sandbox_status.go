package cri

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStatus reports state, IPs and namespaces; verbose adds the pause
// pid, netns path and the config as JSON under "info".
func (r *runtimeService) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	sb.mu.Lock()
	ready, pid := sb.status.Ready, sb.pid
	sb.mu.Unlock()
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.meta.ID,
		Metadata:       sb.config.GetMetadata(),
		State:          sandboxState(ready),
		CreatedAt:      sb.meta.CreatedAt,
		Labels:         sb.config.GetLabels(),
		Annotations:    sb.config.GetAnnotations(),
		RuntimeHandler: sb.meta.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: sb.config.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if len(sb.meta.IPs) > 0 {
		st.Network.Ip = sb.meta.IPs[0]
		for _, ip := range sb.meta.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st, Timestamp: nowNano()}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"pid":          pid,
			"netnsPath":    sb.meta.NetNSPath,
			"sandboxDir":   sb.meta.Dir,
			"config":       sb.config,
			"networkDown":  sb.status.NetworkDown,
			"runtimeType":  runcRuntime,
			"sandboxImage": r.cfg.SandboxImage,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func sandboxState(ready bool) runtimeapi.PodSandboxState {
	if ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}
