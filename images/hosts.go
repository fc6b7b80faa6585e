package images

import (
	"fmt"
	"os"
	"path/filepath"

	dockerhosts "github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// checkHostsFile reads the hosts.toml that applies to host (its own
// directory, or _default) and fails if it is not valid TOML. containerd only
// logs such a file and carries on without the mirrors in it, which sends
// pulls to the wrong place with no visible reason.
func checkHostsFile(root, host string) error {
	if root == "" {
		return nil
	}
	dir, err := dockerhosts.HostDirFromRoot(root)(host)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hosts dir %s: %w", root, err)
	}
	path := filepath.Join(dir, "hosts.toml")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("hosts file %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	return nil
}
