package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/cri"
)

// fileConfig is the TOML config file; keys are the flag names with
// underscores. Flags given on the command line win over the file.
type fileConfig struct {
	Listen              string   `toml:"listen"`
	ContainerdAddress   string   `toml:"containerd_address"`
	ContainerdNamespace string   `toml:"containerd_namespace"`
	Root                string   `toml:"root"`
	State               string   `toml:"state"`
	SandboxImage        string   `toml:"sandbox_image"`
	CNIBinDir           []string `toml:"cni_bin_dir"`
	CNIConfDir          string   `toml:"cni_conf_dir"`
	HostsDir            string   `toml:"hosts_dir"`
	Snapshotter         string   `toml:"snapshotter"`
	StreamAddress       string   `toml:"stream_address"`
	StreamPort          string   `toml:"stream_port"`
	StreamIdleTimeout   string   `toml:"stream_idle_timeout"`
	StreamTLSCert       string   `toml:"stream_tls_cert"`
	StreamTLSKey        string   `toml:"stream_tls_key"`
	LogLevel            string   `toml:"log_level"`
	RuncRoot            string   `toml:"runc_root"`
	RuncBinary          string   `toml:"runc_binary"`
	LogWriter           string   `toml:"log_writer"`
	// NRI (cmd/kcrid/nri.go)
	NRIEnable                    bool   `toml:"nri_enable"`
	NRISocket                    string `toml:"nri_socket"`
	NRIPluginDir                 string `toml:"nri_plugin_dir"`
	NRIPluginConfigDir           string `toml:"nri_plugin_config_dir"`
	NRIPluginRegistrationTimeout string `toml:"nri_plugin_registration_timeout"`
	NRIPluginRequestTimeout      string `toml:"nri_plugin_request_timeout"`
}

func loadFileConfig(path string) (fileConfig, error) {
	var fc fileConfig
	if path == "" {
		return fc, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fc, fmt.Errorf("read config: %w", err)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return fc, fmt.Errorf("config %s: unknown keys:\n%s", path, strict.String())
		}
		return fc, fmt.Errorf("config %s: %w", path, err)
	}
	return fc, nil
}

// options is the daemon's resolved configuration.
type options struct {
	listen   string
	logLevel string
	server   cri.Config
}

// resolve merges defaults, the config file and explicitly set flags.
func resolve(c *cli.Context) (options, error) {
	fc, err := loadFileConfig(c.String("config"))
	if err != nil {
		return options{}, err
	}
	pick := func(flag, fromFile string) string {
		if c.IsSet(flag) || fromFile == "" {
			return c.String(flag)
		}
		return fromFile
	}
	streamAddress, err := streamAddress(pick("stream-address", fc.StreamAddress), pick("stream-port", fc.StreamPort))
	if err != nil {
		return options{}, err
	}
	idle := c.Duration("stream-idle-timeout")
	if !c.IsSet("stream-idle-timeout") && fc.StreamIdleTimeout != "" {
		if idle, err = time.ParseDuration(fc.StreamIdleTimeout); err != nil {
			return options{}, fmt.Errorf("config stream_idle_timeout %q: %w", fc.StreamIdleTimeout, err)
		}
	}
	binDirs := c.StringSlice("cni-bin-dir")
	if !c.IsSet("cni-bin-dir") && len(fc.CNIBinDir) > 0 {
		binDirs = fc.CNIBinDir
	}
	nri, err := nriConfig(c, fc)
	if err != nil {
		return options{}, err
	}
	return options{
		listen:   pick("listen", fc.Listen),
		logLevel: pick("log-level", fc.LogLevel),
		server: cri.Config{
			ContainerdAddress: pick("containerd-address", fc.ContainerdAddress),
			Namespace:         pick("containerd-namespace", fc.ContainerdNamespace),
			RootDir:           pick("root", fc.Root),
			StateDir:          pick("state", fc.State),
			SandboxImage:      pick("sandbox-image", fc.SandboxImage),
			CNIBinDirs:        binDirs,
			CNIConfDir:        pick("cni-conf-dir", fc.CNIConfDir),
			HostsDir:          pick("hosts-dir", fc.HostsDir),
			Snapshotter:       pick("snapshotter", fc.Snapshotter),
			StreamAddress:     streamAddress,
			Stream: cri.StreamConfig{
				IdleTimeout: idle,
				TLSCertFile: pick("stream-tls-cert", fc.StreamTLSCert),
				TLSKeyFile:  pick("stream-tls-key", fc.StreamTLSKey),
			},
			LogWriter: pick("log-writer", fc.LogWriter),
			NRI:       nri,
			Runtime: cri.RuntimeOptions{
				Root:       pick("runc-root", fc.RuncRoot),
				BinaryName: pick("runc-binary", fc.RuncBinary),
			},
		},
	}, nil
}

// streamAddress joins the stream host and port; a host given as
// host:port (the older form) keeps its port unless a port is also set.
func streamAddress(host, port string) (string, error) {
	if h, p, err := net.SplitHostPort(host); err == nil {
		if port != "" && port != "0" && port != p {
			return "", fmt.Errorf("stream address %q has a port and stream port is %s: give one", host, port)
		}
		return net.JoinHostPort(h, p), nil
	}
	if port == "" {
		port = "0"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("stream port %q: want a number from 0 to 65535", port)
	}
	return net.JoinHostPort(host, port), nil
}

func flags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "TOML config file (keys are flag names with underscores)"},
		&cli.StringFlag{Name: "listen", Usage: "CRI endpoint to serve", Value: "unix:///run/kcrid/kcrid.sock"},
		&cli.StringFlag{Name: "containerd-address", Usage: "containerd socket", Value: cri.DefaultContainerd},
		&cli.StringFlag{Name: "containerd-namespace", Usage: "containerd namespace for pods", Value: cri.DefaultNamespace},
		&cli.StringFlag{Name: "root", Usage: "persistent state (sandbox files)", Value: cri.DefaultRootDir},
		&cli.StringFlag{Name: "state", Usage: "runtime state (netns, FIFOs)", Value: cri.DefaultStateDir},
		&cli.StringFlag{Name: "sandbox-image", Usage: "pause image", Value: cri.DefaultSandboxImage},
		&cli.StringSliceFlag{Name: "cni-bin-dir", Usage: "CNI plugin dir (repeatable)", Value: cli.NewStringSlice(cri.DefaultCNIBinDir)},
		&cli.StringFlag{Name: "cni-conf-dir", Usage: "CNI network config dir", Value: cri.DefaultCNIConfDir},
		&cli.StringFlag{Name: "hosts-dir", Usage: "registry hosts dir (certs.d layout) for mirrors", Value: "/etc/containerd/certs.d"},
		&cli.StringFlag{Name: "snapshotter", Usage: "snapshotter for images and containers", Value: "overlayfs"},
		&cli.StringFlag{Name: "stream-address", Usage: "streaming server (exec, attach, port-forward) host, or host:port", Value: "127.0.0.1"},
		&cli.StringFlag{Name: "stream-port", Usage: "streaming server port (0: a free port)", Value: "0"},
		&cli.DurationFlag{Name: "stream-idle-timeout", Usage: "close a streaming connection idle for this long", Value: cri.DefaultStreamIdleTimeout},
		&cli.StringFlag{Name: "stream-tls-cert", Usage: "serve streams over HTTPS with this certificate (PEM; needs --stream-tls-key)"},
		&cli.StringFlag{Name: "stream-tls-key", Usage: "private key (PEM) of --stream-tls-cert"},
		&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error", Value: "info"},
		&cli.StringFlag{Name: "runc-root", Usage: "runc state dir for tasks (empty: the shim's default)"},
		&cli.StringFlag{Name: "runc-binary", Usage: "runc binary for tasks (empty: runc from PATH)"},
		&cli.StringFlag{Name: "log-writer", Usage: "program shims run to write container logs (empty: this kcrid binary)"},
	}, nriFlags()...)
}
