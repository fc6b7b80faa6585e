package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/log"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/network"
)

// A pod's network namespace has an owner file (netnsOwnerDir) that says
// whose it is. The sandbox record that holds the namespace's path is
// written only once the pod is up; a kcrid that dies during CNI ADD leaves
// a namespace no record names, and the owner file lets the next kcrid run
// CNI DEL for it, so the plugin's IPAM gives the address back.

func (c Config) netnsOwnerDir() string { return filepath.Join(c.StateDir, "netns-owners") }

// netnsOwnerFile is the owner file of the namespace at nsPath.
func (c Config) netnsOwnerFile(nsPath string) string {
	return filepath.Join(c.netnsOwnerDir(), filepath.Base(nsPath))
}

type netnsOwner struct {
	SandboxID string `json:"sandboxId"`
	Config    []byte `json:"config"` // runtimeapi.PodSandboxConfig, protobuf
}

// writeNetnsOwner records pod id as the owner of the namespace at nsPath.
func (c Config) writeNetnsOwner(nsPath, id string, cfg *runtimeapi.PodSandboxConfig) error {
	config, err := proto.Marshal(cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(netnsOwner{SandboxID: id, Config: config})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.netnsOwnerDir(), 0o700); err != nil {
		return err
	}
	path := c.netnsOwnerFile(nsPath)
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("record owner of %s: %w", nsPath, err)
	}
	return os.Rename(path+".tmp", path)
}

// removePodNetns removes a pod's network namespace and its owner file.
func (c Config) removePodNetns(nsPath string) error {
	if err := network.RemoveNamespace(nsPath); err != nil {
		return err
	}
	if nsPath == "" {
		return nil
	}
	if err := os.Remove(c.netnsOwnerFile(nsPath)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove owner of %s: %w", nsPath, err)
	}
	return nil
}

// removeOrphanNetns removes namespaces under the netns dir that no sandbox
// refers to (left by a crash during RunPodSandbox), after CNI DEL for the
// pod its owner file names. A namespace whose owner has a record that
// failed to recover is left alone: its containers may be using it. It runs
// before kcrid serves, so no RunPodSandbox can be making one.
func (r *runtimeService) removeOrphanNetns(ctx context.Context, recorded map[string]bool) {
	known := map[string]bool{}
	for _, sb := range r.sandboxes.list() {
		known[sb.meta.NetNSPath] = true
	}
	entries, _ := os.ReadDir(r.cfg.netnsDir())
	for _, e := range entries {
		nsPath := filepath.Join(r.cfg.netnsDir(), e.Name())
		if known[nsPath] {
			continue
		}
		owner, cfg, err := r.cfg.readNetnsOwner(nsPath)
		switch {
		case err == nil && recorded[owner.SandboxID]:
			log.G(ctx).WithField("sandbox", owner.SandboxID).Warn("netns of a pod that failed to recover; left as it is")
			continue
		case err == nil:
			r.releaseOrphanNetwork(ctx, nsPath, owner.SandboxID, cfg)
		case !os.IsNotExist(err):
			// Made before owner files, or the crash came before it.
			log.G(ctx).WithError(err).WithField("netns", nsPath).Warn("unreadable owner file; no CNI DEL for the orphan netns")
		}
		if err := r.cfg.removePodNetns(nsPath); err != nil {
			log.G(ctx).WithError(err).Warn("remove orphan netns")
		} else {
			log.G(ctx).WithField("netns", nsPath).Info("removed orphan netns")
		}
	}
	// Owner files whose namespace is gone (a crash between the two
	// removals), and half-written ones.
	owners, _ := os.ReadDir(r.cfg.netnsOwnerDir())
	for _, e := range owners {
		name := strings.TrimSuffix(e.Name(), ".tmp")
		if _, err := os.Stat(filepath.Join(r.cfg.netnsDir(), name)); os.IsNotExist(err) || name != e.Name() {
			_ = os.Remove(filepath.Join(r.cfg.netnsOwnerDir(), e.Name()))
		}
	}
}

// readNetnsOwner reads the owner file of the namespace at nsPath.
func (c Config) readNetnsOwner(nsPath string) (netnsOwner, *runtimeapi.PodSandboxConfig, error) {
	var owner netnsOwner
	b, err := os.ReadFile(c.netnsOwnerFile(nsPath))
	if err != nil {
		return owner, nil, err
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := json.Unmarshal(b, &owner); err != nil {
		return owner, nil, fmt.Errorf("owner of %s: %w", nsPath, err)
	}
	if err := proto.Unmarshal(owner.Config, cfg); err != nil {
		return owner, nil, fmt.Errorf("owner of %s: pod config: %w", nsPath, err)
	}
	return owner, cfg, nil
}

// releaseOrphanNetwork runs CNI DEL for an orphan namespace of pod id.
func (r *runtimeService) releaseOrphanNetwork(ctx context.Context, nsPath, id string, cfg *runtimeapi.PodSandboxConfig) {
	if err := r.network.Detach(ctx, id, nsPath, attachOptions(id, cfg)); err != nil {
		log.G(ctx).WithError(err).WithField("sandbox", id).Warn("CNI DEL for an orphan netns")
		return
	}
	log.G(ctx).WithField("sandbox", id).Info("released the network of a pod that was never recorded")
}
