package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/cri"
)

// NRI flags and config keys (see "NRI" in docs/kcrid.md); NRI is off
// unless --nri-enable or nri_enable = true.

func nriFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "nri-enable", Usage: "relay pod and container lifecycle to NRI plugins"},
		&cli.StringFlag{Name: "nri-socket", Usage: "socket NRI plugins connect to", Value: cri.DefaultNRISocket},
		&cli.StringFlag{Name: "nri-plugin-dir", Usage: "NRI plugins to launch at startup", Value: cri.DefaultNRIPluginDir},
		&cli.StringFlag{Name: "nri-plugin-config-dir", Usage: "configs of launched NRI plugins", Value: cri.DefaultNRIPluginConfigDir},
		&cli.DurationFlag{Name: "nri-plugin-registration-timeout", Usage: "time a plugin has to register (0: NRI's default, 5s)"},
		&cli.DurationFlag{Name: "nri-plugin-request-timeout", Usage: "time a plugin has to answer a hook (0: NRI's default, 2s)"},
	}
}

// nriConfig merges the NRI flags over the config file's keys.
func nriConfig(c *cli.Context, fc fileConfig) (cri.NRIConfig, error) {
	pick := func(flag, fromFile string) string {
		if c.IsSet(flag) || fromFile == "" {
			return c.String(flag)
		}
		return fromFile
	}
	duration := func(flag, fromFile string) (time.Duration, error) {
		if c.IsSet(flag) || fromFile == "" {
			return c.Duration(flag), nil
		}
		d, err := time.ParseDuration(fromFile)
		if err != nil {
			return 0, fmt.Errorf("config %s %q: %w", flagKey(flag), fromFile, err)
		}
		return d, nil
	}
	cfg := cri.NRIConfig{
		Enable:          c.Bool("nri-enable") || (!c.IsSet("nri-enable") && fc.NRIEnable),
		SocketPath:      pick("nri-socket", fc.NRISocket),
		PluginDir:       pick("nri-plugin-dir", fc.NRIPluginDir),
		PluginConfigDir: pick("nri-plugin-config-dir", fc.NRIPluginConfigDir),
	}
	var err error
	if cfg.RegistrationTimeout, err = duration("nri-plugin-registration-timeout", fc.NRIPluginRegistrationTimeout); err != nil {
		return cfg, err
	}
	if cfg.RequestTimeout, err = duration("nri-plugin-request-timeout", fc.NRIPluginRequestTimeout); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// flagKey is the config file key of a flag.
func flagKey(flag string) string {
	b := []byte(flag)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}
