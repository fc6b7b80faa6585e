package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/containerd/log"
	"golang.org/x/sys/unix"
)

// runcFeatures is what `runc features` (runc >= 1.1) says the runtime can
// do; kcrid reads it once at startup and advertises only what it lists.
type runcFeatures struct {
	MountOptions []string `json:"mountOptions"`
	Linux        *struct {
		Namespaces []string `json:"namespaces"`
	} `json:"linux"`
}

func readRuncFeatures(ctx context.Context, binary string) (*runcFeatures, error) {
	if binary == "" {
		binary = "runc"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "features")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s features: %v: %s", binary, err, strings.TrimSpace(stderr.String()))
	}
	var features runcFeatures
	if err := json.Unmarshal(out, &features); err != nil {
		return nil, fmt.Errorf("%s features: %w", binary, err)
	}
	return &features, nil
}

func (f *runcFeatures) hasNamespace(ns string) bool {
	return f.Linux != nil && slices.Contains(f.Linux.Namespaces, ns)
}

// recursiveReadOnlyMounts tells whether CRI mounts with recursive_read_only
// can be honoured: runc must know the "rro" mount option, which it applies
// with mount_setattr(2), a system call of Linux 5.12.
func recursiveReadOnlyMounts(ctx context.Context, features *runcFeatures) bool {
	if features == nil || !slices.Contains(features.MountOptions, "rro") {
		log.G(ctx).Info("recursive read-only mounts: runc lacks the rro mount option")
		return false
	}
	if !kernelAtLeast(5, 12) {
		log.G(ctx).Info("recursive read-only mounts: the kernel lacks mount_setattr (Linux 5.12)")
		return false
	}
	return true
}

func kernelAtLeast(major, minor int) bool {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false
	}
	var gotMajor, gotMinor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &gotMajor, &gotMinor); err != nil {
		return false
	}
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}
