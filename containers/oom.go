package containers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// capSysResource is the capability that allows lowering oom_score_adj.
const capSysResource = 24

// OOMScoreAdjFloor is the lowest oom_score_adj a container may ask for on
// this host. Without CAP_SYS_RESOURCE (some VMs withhold it even from root)
// runc cannot lower the score below what it inherited and fails with
// "can't get final child's PID from pipe: EOF"; the inherited value is at
// least ours, since containerd and its shims run with the same limits.
// restricted reports whether a floor applies at all.
func OOMScoreAdjFloor() (floor int, restricted bool, err error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false, fmt.Errorf("read capabilities: %w", err)
	}
	hasCap, err := effectiveCapability(string(status), capSysResource)
	if err != nil {
		return 0, false, err
	}
	if hasCap {
		return -1000, false, nil
	}
	raw, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, true, fmt.Errorf("read oom_score_adj: %w", err)
	}
	floor, err = strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, true, fmt.Errorf("parse oom_score_adj %q: %w", raw, err)
	}
	return floor, true, nil
}

// effectiveCapability reads bit capability of CapEff in /proc/<pid>/status.
func effectiveCapability(status string, capability uint) (bool, error) {
	for _, line := range strings.Split(status, "\n") {
		value, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return false, fmt.Errorf("parse CapEff %q: %w", value, err)
		}
		return mask&(1<<capability) != 0, nil
	}
	return false, fmt.Errorf("no CapEff line in /proc/self/status")
}

// ClampOOMScoreAdj raises requested to floor when the host restricts it.
func ClampOOMScoreAdj(requested, floor int, restricted bool) int {
	if restricted && requested < floor {
		return floor
	}
	return requested
}

// WithClampedOOMScoreAdj must come after every option that may set
// oom_score_adj, so the spec never asks for what the host forbids.
func WithClampedOOMScoreAdj(floor int, restricted bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, spec *oci.Spec) error {
		if spec.Process == nil || spec.Process.OOMScoreAdj == nil {
			return nil
		}
		clamped := ClampOOMScoreAdj(*spec.Process.OOMScoreAdj, floor, restricted)
		spec.Process.OOMScoreAdj = &clamped
		return nil
	}
}
