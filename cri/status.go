package cri

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status: the runtime is ready when containerd answers; the network when a
// CNI config and its plugins are there (the reason names what is missing).
func (r *runtimeService) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if ok, err := r.client.IsServing(ctx); !ok || err != nil {
		runtimeCond.Status = false
		runtimeCond.Reason = "ContainerdNotServing"
		if err != nil {
			runtimeCond.Message = err.Error()
		}
	}
	networkCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := r.network.Status(); err != nil {
		networkCond.Status = false
		networkCond.Reason = "NetworkPluginNotReady"
		networkCond.Message = "kcrid: network plugin not ready: " + err.Error()
	}
	resp := &runtimeapi.StatusResponse{
		Status:   &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeCond, networkCond}},
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
		// user_namespaces only when startup found the kernel, runc and the
		// snapshotter able to run a pod in its own (userns.go).
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{
			{Name: "", Features: r.handlerFeatures()},
			{Name: "runc", Features: r.handlerFeatures()},
		},
	}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"containerdNamespace": r.cfg.Namespace,
			"sandboxImage":        r.cfg.SandboxImage,
			"cniConfDir":          r.cfg.CNIConfDir,
			"cniBinDirs":          r.cfg.CNIBinDirs,
			"runtime":             r.cfg.Runtime,
			"logWriter":           r.cfg.LogWriter,
			"userNamespaces":      r.userns,
		})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// RuntimeConfig: kcrid places containers in cgroupfs paths.
func (r *runtimeService) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS},
	}, nil
}

// UpdateRuntimeConfig records the pod CIDR; CNI configs that need it are
// written by whoever manages the node's network.
func (r *runtimeService) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		r.mu.Lock()
		r.podCIDR = cidr
		r.mu.Unlock()
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// handlerFeatures are what both runtime handlers (the default and "runc")
// can do on this node, as probed at startup.
func (r *runtimeService) handlerFeatures() *runtimeapi.RuntimeHandlerFeatures {
	return &runtimeapi.RuntimeHandlerFeatures{
		UserNamespaces:          r.userns.supported(),
		RecursiveReadOnlyMounts: r.recursiveReadOnly,
	}
}
