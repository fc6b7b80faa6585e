package system

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"
)

// Info describes the containerd kctr is connected to and the host it runs on.
type Info struct {
	Address   string
	Namespace string
	Server    ServerInfo
	// Snapshotter is the one kctr unpacks into; SnapshotterStatus is "ok",
	// or why containerd could not load it.
	Snapshotter       string
	SnapshotterStatus string
	// Plugins counts containerd's plugins; PluginsFailed those that did
	// not load (normal for e.g. btrfs on a host without btrfs).
	Plugins       int
	PluginsFailed int
	// CgroupVersion is "1" or "2"; CgroupDriver is how kctr's containers
	// are placed in cgroups.
	CgroupVersion string
	CgroupDriver  string
	Kernel        string
	OS            string
	Architecture  string
	CPUs          int
	MemoryBytes   int64
}

// ServerInfo is what containerd says about itself.
type ServerInfo struct {
	Version  string
	Revision string
	UUID     string
}

// InfoOptions says which containerd and what kctr uses in it.
type InfoOptions struct {
	Address     string
	Namespace   string
	Snapshotter string
}

// GetInfo asks containerd for its version and plugins and reads the host.
func GetInfo(ctx context.Context, client *containerd.Client, opts InfoOptions) (*Info, error) {
	server, err := GetServerInfo(ctx, client)
	if err != nil {
		return nil, err
	}
	info := &Info{
		Address:      opts.Address,
		Namespace:    opts.Namespace,
		Server:       server,
		Snapshotter:  opts.Snapshotter,
		CgroupDriver: "cgroupfs",
		OS:           runtime.GOOS,
		Architecture: runtime.GOARCH,
		CPUs:         runtime.NumCPU(),
	}
	plugins, err := client.IntrospectionService().Plugins(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containerd plugins: %w", err)
	}
	info.SnapshotterStatus = "not found"
	for _, p := range plugins.Plugins {
		info.Plugins++
		if p.InitErr != nil {
			info.PluginsFailed++
		}
		if p.Type == "io.containerd.snapshotter.v1" && p.ID == opts.Snapshotter {
			info.SnapshotterStatus = "ok"
			if p.InitErr != nil {
				info.SnapshotterStatus = p.InitErr.GetMessage()
			}
		}
	}
	info.CgroupVersion = CgroupVersion()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		info.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	info.MemoryBytes = memTotal()
	return info, nil
}

// GetServerInfo asks containerd for its version, revision and UUID.
func GetServerInfo(ctx context.Context, client *containerd.Client) (ServerInfo, error) {
	v, err := client.Version(ctx)
	if err != nil {
		return ServerInfo{}, fmt.Errorf("containerd version: %w", err)
	}
	out := ServerInfo{Version: v.Version, Revision: v.Revision}
	if s, err := client.Server(ctx); err == nil {
		out.UUID = s.UUID
	}
	return out, nil
}

// CgroupVersion is "2" when /sys/fs/cgroup is the unified hierarchy,
// "1" otherwise (hybrid hosts included: containers get v1 controllers).
func CgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func memTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
