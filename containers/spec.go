package containers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is a bind mount from the host (Docker's -v HOST:CONTAINER[:ro]).
type Mount struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
}

// ParseVolume reads -v HOST:CONTAINER[:ro|rw]. Only bind mounts of
// absolute host paths are supported; a missing host directory is created,
// as Docker does.
func ParseVolume(spec string) (Mount, error) {
	bad := func(why string) (Mount, error) {
		return Mount{}, fmt.Errorf("invalid volume %q: %s: %w", spec, why, errdefs.ErrInvalidArgument)
	}
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want HOST-PATH:CONTAINER-PATH[:ro|rw]")
	}
	m := Mount{Source: parts[0], Destination: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return bad(fmt.Sprintf("mode %q is not ro or rw", parts[2]))
		}
	}
	if !filepath.IsAbs(m.Source) {
		return bad("the host path must be absolute (named volumes are not supported)")
	}
	if !filepath.IsAbs(m.Destination) {
		return bad("the container path must be absolute")
	}
	return m, nil
}

// Resources limit what a container may use (Docker's --cpus, --memory,
// --pids-limit).
type Resources struct {
	CPUs      float64 `json:"cpus,omitempty"`
	Memory    int64   `json:"memory,omitempty"`
	PidsLimit int64   `json:"pidsLimit,omitempty"`
}

// ParseMemory reads Docker's memory sizes: 512m, 1g, 1048576, 64k.
func ParseMemory(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	units := map[byte]int64{'b': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
	number, multiplier := strings.ToLower(s), int64(1)
	if n := len(number); n > 0 {
		if u, ok := units[number[n-1]]; ok {
			number, multiplier = number[:n-1], u
		}
	}
	value, err := strconv.ParseFloat(number, 64)
	if err != nil || value <= 0 {
		return 0, fmt.Errorf("invalid memory size %q (want e.g. 512m or 1g): %w", s, errdefs.ErrInvalidArgument)
	}
	return int64(value * float64(multiplier)), nil
}

// SecurityOptions are the privileges a container runs with.
type SecurityOptions struct {
	Privileged bool
	ReadOnly   bool
	CapAdd     []string
	CapDrop    []string
}

// normalizeCapabilities turns "net_admin" into "CAP_NET_ADMIN"; ALL stays.
func normalizeCapabilities(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// optionSpecOpts are the spec options for the flags beyond image, command
// and network. They come after the image config so they win over it.
func optionSpecOpts(opts CreateOptions) ([]oci.SpecOpts, error) {
	// Like Docker, show the container its own cgroups, read-only unless
	// privileged (containerd's default spec has no cgroup mount at all).
	cgroupMode := "ro"
	if opts.Security.Privileged {
		cgroupMode = "rw"
	}
	out := []oci.SpecOpts{oci.WithMounts([]specs.Mount{{
		Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{cgroupMode, "nosuid", "noexec", "nodev"},
	}})}
	if len(opts.Entrypoint) > 0 {
		// Docker: --entrypoint replaces the image's ENTRYPOINT and drops its
		// CMD; arguments after the image become the new entrypoint's.
		args := append(append([]string(nil), opts.Entrypoint...), opts.Args...)
		out = append(out, oci.WithProcessArgs(args...))
	}
	if opts.User != "" {
		out = append(out, oci.WithUser(opts.User))
	}
	if len(opts.Mounts) > 0 {
		mounts := make([]specs.Mount, 0, len(opts.Mounts))
		for _, m := range opts.Mounts {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return nil, fmt.Errorf("volume %s: %w", m.Source, err)
			}
			options := []string{"rbind", "rw"}
			if m.ReadOnly {
				options[1] = "ro"
			}
			mounts = append(mounts, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: options})
		}
		out = append(out, oci.WithMounts(mounts))
	}
	r := opts.Resources
	if r.CPUs < 0 || r.Memory < 0 || r.PidsLimit < 0 {
		return nil, fmt.Errorf("resource limits must not be negative: %w", errdefs.ErrInvalidArgument)
	}
	if r.CPUs > 0 {
		const period = 100000
		out = append(out, oci.WithCPUCFS(int64(r.CPUs*period), period))
	}
	if r.Memory > 0 {
		out = append(out, oci.WithMemoryLimit(uint64(r.Memory)))
	}
	if r.PidsLimit > 0 {
		out = append(out, oci.WithPidsLimit(r.PidsLimit))
	}
	sec := opts.Security
	if sec.Privileged {
		out = append(out, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices, withWritableSys)
	}
	if sec.ReadOnly {
		out = append(out, oci.WithRootFSReadonly())
	}
	if len(sec.CapAdd) > 0 {
		out = append(out, oci.WithAddedCapabilities(normalizeCapabilities(sec.CapAdd)))
	}
	if len(sec.CapDrop) > 0 {
		out = append(out, oci.WithDroppedCapabilities(normalizeCapabilities(sec.CapDrop)))
	}
	return out, nil
}

// withWritableSys lets a privileged container write /sys, as Docker does.
func withWritableSys(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	for i, m := range s.Mounts {
		if m.Destination != "/sys" {
			continue
		}
		var options []string
		for _, o := range m.Options {
			if o != "ro" {
				options = append(options, o)
			}
		}
		s.Mounts[i].Options = append(options, "rw")
	}
	return nil
}
