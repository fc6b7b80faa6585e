package endpoints

import (
	"fmt"
	"strconv"
	"strings"
)

// Keys returns the config keys Get and Set know, in file order.
func Keys() []string { return append([]string(nil), knownKeys...) }

// Get returns the value of a config key as text (crictl config --get).
func (c *Config) Get(key string) (string, error) {
	switch key {
	case "runtime-endpoint":
		return c.RuntimeEndpoint, nil
	case "image-endpoint":
		return c.ImageEndpoint, nil
	case "timeout":
		return strconv.Itoa(c.Timeout), nil
	case "debug":
		return strconv.FormatBool(c.Debug), nil
	case "pull-image-on-create":
		return strconv.FormatBool(c.PullImageOnCreate), nil
	case "disable-pull-on-run":
		return strconv.FormatBool(c.DisablePullOnRun), nil
	case "legacy-default-endpoints":
		return strconv.FormatBool(c.LegacyDefaultEndpoints), nil
	}
	return "", fmt.Errorf("unknown config key %q (known: %s)", key, strings.Join(knownKeys, ", "))
}

// Set parses and stores a config value (crictl config --set key=value).
// Endpoints are checked with ParseEndpoint (tcp allowed: the file may be
// used with --allow-tcp).
func (c *Config) Set(key, value string) error {
	parseBool := func() (bool, error) {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return false, fmt.Errorf("config key %s: %q is not a boolean", key, value)
		}
		return b, nil
	}
	var err error
	switch key {
	case "runtime-endpoint", "image-endpoint":
		if value != "" {
			if _, perr := ParseEndpoint(value, true); perr != nil {
				return fmt.Errorf("config key %s: %v", key, perr)
			}
		}
		if key == "runtime-endpoint" {
			c.RuntimeEndpoint = value
		} else {
			c.ImageEndpoint = value
		}
	case "timeout":
		n, perr := strconv.Atoi(value)
		if perr != nil || n < 0 {
			return fmt.Errorf("config key timeout: %q is not a whole number of seconds", value)
		}
		c.Timeout = n
	case "debug":
		c.Debug, err = parseBool()
	case "pull-image-on-create":
		c.PullImageOnCreate, err = parseBool()
	case "disable-pull-on-run":
		c.DisablePullOnRun, err = parseBool()
	case "legacy-default-endpoints":
		c.LegacyDefaultEndpoints, err = parseBool()
	default:
		return fmt.Errorf("unknown config key %q (known: %s)", key, strings.Join(knownKeys, ", "))
	}
	return err
}
