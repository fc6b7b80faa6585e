package endpoints

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/yaml"
)

// Config is the crictl.yaml config file.
type Config struct {
	RuntimeEndpoint   string `json:"runtime-endpoint"`
	ImageEndpoint     string `json:"image-endpoint"`
	Timeout           int    `json:"timeout"` // seconds; <= 0 means unset
	Debug             bool   `json:"debug"`
	PullImageOnCreate bool   `json:"pull-image-on-create"`
	DisablePullOnRun  bool   `json:"disable-pull-on-run"`
	// LegacyDefaultEndpoints selects the pre-1.24 default list
	// (dockershim first). Our own key; crictl ignores it.
	LegacyDefaultEndpoints bool `json:"legacy-default-endpoints,omitempty"`

	// extra holds keys this package does not know, so that Save keeps
	// them and Resolve can warn about likely typos.
	extra map[string]json.RawMessage
}

// knownKeys lists the config keys in the order Save writes them.
var knownKeys = []string{
	"runtime-endpoint",
	"image-endpoint",
	"timeout",
	"debug",
	"pull-image-on-create",
	"disable-pull-on-run",
	"legacy-default-endpoints",
}

// LoadConfig reads a crictl.yaml file. An empty path means DefaultConfigPath,
// which may be missing (an empty Config is returned). A path given
// explicitly must exist; the error then wraps fs.ErrNotExist. Malformed
// YAML or a value of the wrong type is an error naming the file.
func LoadConfig(path string) (*Config, error) {
	mustExist := path != ""
	if path == "" {
		path = DefaultConfigPath
	}
	c, _, err := loadConfig(path, mustExist)
	return c, err
}

// loadConfig reads path; a missing file is an error only if mustExist.
// found reports whether the file was there.
func loadConfig(path string, mustExist bool) (c *Config, found bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return &Config{}, false, nil
		}
		return nil, false, fmt.Errorf("config file %s: %w", path, err)
	}
	c, err = parseConfig(data)
	if err != nil {
		return nil, true, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, true, nil
}

func parseConfig(data []byte) (*Config, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	j = bytes.TrimSpace(j)
	if len(j) == 0 || string(j) == "null" {
		return c, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(j, &raw); err != nil {
		return nil, errors.New("expected a mapping of keys (runtime-endpoint: ..., timeout: ...)")
	}
	if err := json.Unmarshal(j, c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("key %q: cannot use a %s as %s", te.Field, te.Value, te.Type)
		}
		return nil, err
	}
	known := make(map[string]bool, len(knownKeys))
	for _, k := range knownKeys {
		known[k] = true
	}
	for k, v := range raw {
		if !known[k] {
			if c.extra == nil {
				c.extra = map[string]json.RawMessage{}
			}
			c.extra[k] = v
		}
	}
	return c, nil
}

// UnknownKeys returns, sorted, the keys of the loaded file that this package
// does not know (often a typo such as runtime_endpoint).
func (c *Config) UnknownKeys() []string {
	keys := make([]string, 0, len(c.extra))
	for k := range c.extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Marshal returns the YAML form: known keys first in a fixed order, then
// unknown keys kept from the loaded file, sorted.
func (c *Config) Marshal() ([]byte, error) {
	j, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var vals map[string]json.RawMessage
	if err := json.Unmarshal(j, &vals); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	write := func(k string, v json.RawMessage) error {
		y, err := yaml.JSONToYAML(append(append([]byte(`{`+quoteJSON(k)+`:`), v...), '}'))
		if err != nil {
			return err
		}
		buf.Write(y)
		return nil
	}
	for _, k := range knownKeys {
		if v, ok := vals[k]; ok {
			if err := write(k, v); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range c.UnknownKeys() {
		if err := write(k, c.extra[k]); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Save writes the config to path atomically (temporary file and rename),
// creating the directory if needed. If path is a symlink, its target is
// replaced.
func (c *Config) Save(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("config file %s: %w", path, werr)
	}
	return nil
}
