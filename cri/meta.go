package cri

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// What kcrid keeps about its objects lives in containerd itself, so the
// in-memory index can be rebuilt after a restart (see restart.go):
//   - label labelKind on every container record kcrid made (sandbox or container),
//     labelSandbox on containers;
//   - extension extMeta: what never changes after creation (the CRI config
//     as protobuf, resolved image, log path, netns, IPs);
//   - extension extStatus: what changes (state, start/finish times, exit).
const (
	labelKind     = "io.kcrid.kind"
	labelSandbox  = "io.kcrid.sandbox-id"
	kindSandbox   = "sandbox"
	kindContainer = "container"
	extMeta       = "io.kcrid.meta"
	extStatus     = "io.kcrid.status"
	typeMeta      = "kcrid.io/meta/v1"
	typeStatus    = "kcrid.io/status/v1"
)

// sandboxMeta is fixed when the sandbox is created.
type sandboxMeta struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Config         []byte   `json:"config"` // runtimeapi.PodSandboxConfig, protobuf
	RuntimeHandler string   `json:"runtimeHandler,omitempty"`
	NetNSPath      string   `json:"netnsPath,omitempty"`
	IPs            []string `json:"ips,omitempty"`
	Dir            string   `json:"dir"` // hostname, hosts, resolv.conf
	CreatedAt      int64    `json:"createdAt"`
	// Record: the pod has a record in containerd's sandbox store, which
	// its containers name (sandbox_record.go).
	Record bool `json:"record,omitempty"`
}

// sandboxStatus changes over the sandbox's life.
type sandboxStatus struct {
	Ready bool `json:"ready"`
	// NetworkDown is set once CNI DEL succeeded and the netns is gone.
	NetworkDown bool `json:"networkDown,omitempty"`
}

type sandbox struct {
	meta   sandboxMeta
	config *runtimeapi.PodSandboxConfig
	mu     sync.Mutex
	// pid of the pause process while ready (for joining namespaces).
	pid    uint32
	status sandboxStatus
}

// containerMeta is fixed when the container is created.
type containerMeta struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SandboxID  string `json:"sandboxId"`
	Config     []byte `json:"config"` // runtimeapi.ContainerConfig, protobuf
	ImageName  string `json:"imageName"`
	ImageID    string `json:"imageId"`
	ImageRef   string `json:"imageRef"`
	LogPath    string `json:"logPath,omitempty"`
	StopSignal string `json:"stopSignal,omitempty"`
	CreatedAt  int64  `json:"createdAt"`
}

// containerStatus changes over the container's life; the CRI state is
// derived from it (see state).
type containerStatus struct {
	StartedAt  int64  `json:"startedAt,omitempty"`
	FinishedAt int64  `json:"finishedAt,omitempty"`
	ExitCode   int32  `json:"exitCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	// Removing is set while RemoveContainer runs, so Start cannot race it.
	Removing bool `json:"-"`
}

func (s containerStatus) state() runtimeapi.ContainerState {
	switch {
	case s.FinishedAt != 0:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	case s.StartedAt != 0:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	return runtimeapi.ContainerState_CONTAINER_CREATED
}

type container struct {
	meta   containerMeta
	config *runtimeapi.ContainerConfig
	// op serialises lifecycle operations that talk to containerd (start,
	// update); mu guards the fields below and is only held briefly, so
	// List and Status never wait for containerd.
	op     sync.Mutex
	mu     sync.Mutex
	status containerStatus
	// oom is set by a /tasks/oom event, so the exit is reported as OOMKilled.
	oom bool
	// user is read from the spec on first ContainerStatus.
	user *runtimeapi.ContainerUser
	// exited is closed once the exit is recorded.
	exited chan struct{}
	// io is the stdio kcrid owns for a container created with stdin or
	// tty, while it runs (container_attach_io.go); guarded by mu.
	io *containerIO
	// listed is the container's ListContainers entry, encoded, for the
	// state it was encoded in (container_list.go); guarded by mu.
	listed listedContainer
	// rootfs are the rootfs snapshot's mounts when CreateContainer learnt
	// them (not after a restart), for StartContainer's task create.
	rootfs []mount.Mount
}

// exitReason is the CRI reason for an exit code.
func exitReason(code int32, oom bool) string {
	switch {
	case oom:
		return "OOMKilled"
	case code == 0:
		return "Completed"
	}
	return "Error"
}

func nowNano() int64 { return time.Now().UnixNano() }

func jsonAny(typeURL string, v any) (*anypb.Any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &anypb.Any{TypeUrl: typeURL, Value: b}, nil
}

// withExtension sets a JSON extension on a container record being created
// or updated.
func setExtension(c *containers.Container, name, typeURL string, v any) error {
	a, err := jsonAny(typeURL, v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	if c.Extensions == nil {
		c.Extensions = map[string]typeurl.Any{}
	}
	c.Extensions[name] = a
	return nil
}

func getExtension(c containers.Container, name string, v any) error {
	a, ok := c.Extensions[name]
	if !ok || a == nil {
		return fmt.Errorf("container %s has no %s extension", c.ID, name)
	}
	if err := json.Unmarshal(a.GetValue(), v); err != nil {
		return fmt.Errorf("decode %s of %s: %w", name, c.ID, err)
	}
	return nil
}

func decodeSandboxConfig(b []byte) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	return cfg, proto.Unmarshal(b, cfg)
}

func decodeContainerConfig(b []byte) (*runtimeapi.ContainerConfig, error) {
	cfg := &runtimeapi.ContainerConfig{}
	return cfg, proto.Unmarshal(b, cfg)
}

// recordLabels are the containerd labels of a record: the CRI config's
// labels, so tools looking at containerd directly (`kctr -n k8s.io ps`,
// ctr) see the pod and container names the kubelet set, plus kcrid's own,
// which win. Labels containerd would refuse (over its 4 KiB limit) stay
// only in the metadata extension.
func recordLabels(criLabels map[string]string, own map[string]string) map[string]string {
	const maxLabelSize = 4096
	out := make(map[string]string, len(criLabels)+len(own))
	for k, v := range criLabels {
		if len(k)+len(v) <= maxLabelSize {
			out[k] = v
		}
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}
