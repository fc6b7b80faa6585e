package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RemoveCgroup removes a cgroup a runtime made as a pod's parent (rel like
// "/kcrid"), in every cgroup v1 hierarchy, the hybrid unified one and a
// v2-only mount; runc removes only the containers' own cgroups below it.
// A cgroup that is gone is fine; one that still holds processes is an error.
func RemoveCgroup(rel string) error {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + rel)
	dirs = append(dirs, "/sys/fs/cgroup"+rel)
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
