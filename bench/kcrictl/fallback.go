package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/endpoints"
)

// The default-endpoint case needs the daemon's socket at a REAL default
// path, so it runs in a child process (this binary again) inside a
// private mount namespace with a tmpfs over /run (and /var/run): the
// host's /run is never touched, and the mounts vanish with the child.
const (
	envChild       = "KCRICTL_BENCH_NS_CHILD"
	envParentMntNS = "KCRICTL_BENCH_PARENT_MNTNS"
	envKcrictl     = "KCRICTL_BENCH_KCRICTL"
	envCrictl      = "KCRICTL_BENCH_CRICTL"
	envSocket      = "KCRICTL_BENCH_SOCKET"
	envRuns        = "KCRICTL_BENCH_RUNS"
	envContainers  = "KCRICTL_BENCH_CONTAINERS"
)

// runFallbackChild re-executes this binary under `unshare --mount`; the
// child prints its medians and ratio on our stdout.
func runFallbackChild(ctx context.Context, kcrictl, crictl, sock string, runs, containers int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	mntns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return err
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--propagation", "private", self)
	cmd.Env = append(os.Environ(), envChild+"=1", envParentMntNS+"="+mntns, envKcrictl+"="+kcrictl, envCrictl+"="+crictl,
		envSocket+"="+sock, envRuns+"="+strconv.Itoa(runs), envContainers+"="+strconv.Itoa(containers))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("default-endpoint case in a private mount namespace: %w", err)
	}
	return nil
}

// fallbackChild runs inside the private mount namespace.
func fallbackChild() error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if parent := os.Getenv(envParentMntNS); err != nil || parent == "" || self == parent {
		return fmt.Errorf("refusing to run: not in a private mount namespace (%s, parent %s, %v)", self, parent, err)
	}
	kcrictl, crictl, sock := os.Getenv(envKcrictl), os.Getenv(envCrictl), os.Getenv(envSocket)
	runs, err1 := strconv.Atoi(os.Getenv(envRuns))
	want, err2 := strconv.Atoi(os.Getenv(envContainers))
	if kcrictl == "" || crictl == "" || sock == "" || errors.Join(err1, err2) != nil {
		return errors.New("child started without its settings")
	}

	mounts := []string{"/run"}
	if fi, err := os.Lstat("/var/run"); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		mounts = append(mounts, "/var/run")
	}
	for _, m := range mounts {
		if err := syscall.Mount("tmpfs", m, "tmpfs", 0, "mode=0755,size=16m"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", m, err)
		}
	}
	defaults := endpoints.DefaultEndpoints(false)
	paths := make([]string, len(defaults))
	for i, ep := range defaults {
		paths[i] = strings.TrimPrefix(ep, "unix://")
	}
	if len(paths) != 3 {
		return fmt.Errorf("default endpoints %v: want three", defaults)
	}
	for _, p := range paths[:2] {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			return fmt.Errorf("%s exists under the fresh tmpfs (%v)", p, err)
		}
	}
	// The third default: the daemon's socket inode, bind-mounted.
	target := paths[2]
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		return err
	}
	if err := syscall.Mount(sock, target, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", sock, target, err)
	}
	// Both tools read /etc/crictl.yaml when nothing else names a config:
	// hide a host one behind an empty file, in this namespace only.
	const hostCfg = "/etc/crictl.yaml"
	if _, err := os.Stat(hostCfg); err == nil {
		empty := "/run/kcrictl-bench-empty.yaml"
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			return err
		}
		if err := syscall.Mount(empty, hostCfg, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("hide %s: %w", hostCfg, err)
		}
	}

	// No flag, no environment, no config: the default list decides.
	out, err := exec.Command(kcrictl, "endpoints").Output()
	if err != nil || !strings.Contains(string(out), "chosen: "+defaults[2]) {
		return fmt.Errorf("kcrictl endpoints did not choose %s: %v\n%s", defaults[2], err, out)
	}
	for _, bin := range []string{kcrictl, crictl} {
		if err := expectCount(want, bin, "ps", "-q"); err != nil {
			return err
		}
	}
	fmt.Printf("no endpoint set, only %s alive (%s, %s absent):\n", defaults[2], defaults[0], defaults[1])
	m, err := timeInterleaved(context.Background(), []variant{
		{"kcrictl ps (3rd default)", []string{kcrictl, "ps"}},
		{"crictl ps (3rd default)", []string{crictl, "ps"}},
	}, runs)
	if err != nil {
		return err
	}
	measure.Ratio("ratio kcrictl/crictl (≤ 0.5)", m[0], m[1])
	return nil
}
