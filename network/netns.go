package network

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/pkg/netns"
)

// NewNamespace creates a network namespace bind-mounted under dir and
// returns its path. The mount keeps it alive without any process in it.
func NewNamespace(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", fmt.Errorf("create netns dir %s: %w", dir, err)
	}
	ns, err := netns.NewNetNS(dir)
	if err != nil {
		return "", fmt.Errorf("create network namespace in %s: %w", dir, err)
	}
	return ns.GetPath(), nil
}

// RemoveNamespace unmounts and deletes the namespace at path. A path that
// is already gone is not an error, so teardown can be repeated.
func RemoveNamespace(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	if err := netns.LoadNetNS(path).Remove(); err != nil {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}
