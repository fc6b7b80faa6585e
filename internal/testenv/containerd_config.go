package testenv

import (
	"path/filepath"

	"github.com/pelletier/go-toml/v2"
)

// Plugin IDs whose defaults would touch shared host paths or start work we
// do not need.
const (
	pluginCRI16       = "io.containerd.grpc.v1.cri" // 1.6: the whole CRI; 2.x: its gRPC service
	pluginCRIImages   = "io.containerd.cri.v1.images"
	pluginCRIRuntime  = "io.containerd.cri.v1.runtime"
	pluginPodSandbox  = "io.containerd.podsandbox.controller.v1.podsandbox"
	pluginNRI         = "io.containerd.nri.v1.nri"
	pluginOpt         = "io.containerd.internal.v1.opt"
	pluginShimManager = "io.containerd.shim.v1.manager"
	pluginTransfer    = "io.containerd.transfer.v1.local"
)

type tomlMap = map[string]any

// config renders config.toml for c.version.
func (c *Containerd) config() ([]byte, error) {
	var cfg tomlMap
	if c.version == "1.6" {
		cfg = c.config16()
	} else {
		cfg = c.config24()
	}
	return toml.Marshal(cfg)
}

// common holds the keys both versions spell the same way.
func (c *Containerd) common(version int) tomlMap {
	level := c.opts.LogLevel
	if level == "" {
		level = "info"
	}
	return tomlMap{
		"version": version,
		"root":    filepath.Join(c.dir, "root"),
		"state":   filepath.Join(c.dir, "state"),
		"temp":    filepath.Join(c.dir, "tmp"),
		// Root here lacks CAP_SYS_RESOURCE: containerd must not try to
		// lower its own oom_score_adj.
		"oom_score": 0,
		// Only files named in our own config are imported; 2.x's default
		// /etc/containerd/conf.d/*.toml is not followed for an explicit
		// --config (verified with `containerd config dump`), and this keeps
		// it that way should the default ever apply.
		"imports":          []string{},
		"disabled_plugins": []string{},
		"debug":            tomlMap{"level": level},
	}
}

func (c *Containerd) criCNIConfDir() string {
	if c.opts.CNIConfDir != "" {
		return c.opts.CNIConfDir
	}
	return filepath.Join(c.dir, "cni", "net.d")
}

func (c *Containerd) criCNIBinDir() string {
	if c.opts.CNIBinDir != "" {
		return c.opts.CNIBinDir
	}
	return "/usr/lib/cni"
}

// runcRuntime is the CRI runtime entry, same keys in 1.6 and 2.4.
func (c *Containerd) runcRuntime() tomlMap {
	return tomlMap{
		"runtime_type": "io.containerd.runc.v2",
		"options": tomlMap{
			"BinaryName":    c.runc,
			"SystemdCgroup": false, // no systemd on these hosts
			"Root":          c.RuncRoot(),
		},
	}
}

// config16 is a version-2 config for containerd 1.6.
func (c *Containerd) config16() tomlMap {
	cfg := c.common(2)
	cfg["grpc"] = tomlMap{"address": c.address}
	cfg["ttrpc"] = tomlMap{"address": c.address + ".ttrpc"}
	cfg["debug"].(tomlMap)["address"] = filepath.Join(c.dir, "debug.sock")
	cfg["metrics"] = tomlMap{"address": ""}
	plugins := tomlMap{
		pluginOpt: tomlMap{"path": filepath.Join(c.dir, "opt")},
	}
	if !c.opts.EnableCRI {
		cfg["disabled_plugins"] = []string{pluginCRI16}
	} else {
		cri := tomlMap{
			// The VM withholds CAP_SYS_RESOURCE: the -998 oom_score_adj
			// the kubelet/critest asks for would make runc fail.
			"restrict_oom_score_adj": true,
			// Network namespaces under our state dir, not /var/run/netns,
			// so Stop's unmount sweep catches any leftover.
			"netns_mounts_under_state_dir": true,
			// Port 0: parallel daemons must not fight over a stream port.
			"stream_server_address": "127.0.0.1",
			"stream_server_port":    "0",
			"enable_selinux":        false,
			"containerd": tomlMap{
				"snapshotter":          "overlayfs",
				"default_runtime_name": "runc",
				"runtimes":             tomlMap{"runc": c.runcRuntime()},
			},
			"cni": tomlMap{
				"bin_dir":  c.criCNIBinDir(),
				"conf_dir": c.criCNIConfDir(),
			},
		}
		if c.opts.SandboxImage != "" {
			cri["sandbox_image"] = c.opts.SandboxImage
		}
		if c.opts.HostsDir != "" {
			cri["registry"] = tomlMap{"config_path": c.opts.HostsDir}
		}
		plugins[pluginCRI16] = cri
	}
	cfg["plugins"] = plugins
	return cfg
}

// config24 is a version-4 config for containerd 2.4. Version 4 is 2.4's
// native format (server sockets moved into io.containerd.server.v1.*
// plugins); a version-3 file would be migrated with a warning every start.
func (c *Containerd) config24() tomlMap {
	cfg := c.common(4)
	plugins := tomlMap{
		"io.containerd.server.v1.grpc":    tomlMap{"address": c.address},
		"io.containerd.server.v1.ttrpc":   tomlMap{"address": c.address + ".ttrpc"},
		"io.containerd.server.v1.debug":   tomlMap{"address": filepath.Join(c.dir, "debug.sock")},
		"io.containerd.server.v1.metrics": tomlMap{"address": ""},
		pluginOpt:                         tomlMap{"path": filepath.Join(c.dir, "opt")},
	}
	// Shim sockets default to the shared /run/containerd/s; 2.x lets us
	// keep them in our dir when the path is short enough.
	if sd := filepath.Join(c.dir, "s"); len(sd) <= maxShimSocketDir {
		plugins[pluginShimManager] = tomlMap{"socket_dir": sd}
	}
	if c.opts.HostsDir != "" {
		plugins[pluginTransfer] = tomlMap{"config_path": c.opts.HostsDir}
	}
	if !c.opts.EnableCRI {
		// The CRI gRPC service alone is not enough in 2.x: the cri.v1
		// image/runtime plugins and the pod sandbox controller would still
		// load (and start a snapshot syncer); NRI would listen on the
		// shared /var/run/nri/nri.sock.
		cfg["disabled_plugins"] = []string{pluginCRI16, pluginCRIImages, pluginCRIRuntime, pluginPodSandbox, pluginNRI}
	} else {
		images := tomlMap{"snapshotter": "overlayfs"}
		if c.opts.SandboxImage != "" {
			images["pinned_images"] = tomlMap{"sandbox": c.opts.SandboxImage}
		}
		if c.opts.HostsDir != "" {
			images["registry"] = tomlMap{"config_path": c.opts.HostsDir}
		}
		plugins[pluginCRIImages] = images
		plugins[pluginCRIRuntime] = tomlMap{
			"restrict_oom_score_adj":       true,
			"netns_mounts_under_state_dir": true,
			"enable_selinux":               false,
			"containerd": tomlMap{
				"default_runtime_name": "runc",
				"runtimes":             tomlMap{"runc": c.runcRuntime()},
			},
			"cni": tomlMap{
				"bin_dirs": []string{c.criCNIBinDir()},
				"conf_dir": c.criCNIConfDir(),
			},
		}
		plugins[pluginCRI16] = tomlMap{
			"stream_server_address": "127.0.0.1",
			"stream_server_port":    "0",
		}
		// NRI stays on (critest on 2.4 was measured with it) but private.
		plugins[pluginNRI] = tomlMap{
			"disable":            false,
			"socket_path":        c.nriSocket(),
			"plugin_path":        filepath.Join(c.dir, "nri", "plugins"),
			"plugin_config_path": filepath.Join(c.dir, "nri", "conf.d"),
		}
	}
	cfg["plugins"] = plugins
	return cfg
}
