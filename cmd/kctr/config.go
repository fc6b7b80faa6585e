package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v2"
)

// defaultConfigPath holds defaults for the global options, so a node's
// operator sets them once (e.g. namespace = "k8s.io").
const defaultConfigPath = "/etc/kctr/kctr.toml"

// configKeys maps the TOML keys (nerdctl's spelling) to global flags.
var configKeys = map[string]string{
	"address":           "address",
	"namespace":         "namespace",
	"snapshotter":       "snapshotter",
	"data_root":         "data-root",
	"hosts_dir":         "hosts-dir",
	"insecure_registry": "insecure-registry",
	"cni_path":          "cni-path",
	"cni_netconfpath":   "cni-netconfpath",
	"bridge_name":       "bridge-name",
	"bridge_subnet":     "bridge-subnet",
	"netns_dir":         "netns-dir",
	"debug":             "debug",
}

// applyConfig fills global options from the config file where neither a
// flag nor an environment variable set them: flag > env > file > default.
// A missing default file is fine; a missing file named by --config or an
// unknown key is an error.
func applyConfig(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && !c.IsSet("config") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for key, value := range values {
		flag, ok := configKeys[key]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q", path, key)
		}
		if c.IsSet(flag) {
			continue
		}
		var text string
		switch v := value.(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			text = strings.Join(parts, ",")
		default:
			text = fmt.Sprint(v)
		}
		if err := c.Set(flag, text); err != nil {
			return fmt.Errorf("config file %s: %s = %v: %w", path, key, value, err)
		}
	}
	return nil
}
