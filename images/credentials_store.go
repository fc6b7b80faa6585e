package images

import (
	"fmt"
	"os"
	"path/filepath"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
)

// StoreCredentials saves auth for host in config.json under dir (empty
// means DefaultDockerConfigDir), through the credential helper or store
// config.json names, as `docker login` does. A config.json written here is
// readable by its owner only. It returns the file's path.
func StoreCredentials(dir, host string, auth AuthConfig) (string, error) {
	cfg, err := loadDockerConfig(dir)
	if err != nil {
		return "", err
	}
	username, secret, err := auth.credentials()
	if err != nil {
		return "", err
	}
	entry := types.AuthConfig{ServerAddress: CredentialsKey(host), Username: username, Password: secret}
	if username == "" {
		entry = types.AuthConfig{ServerAddress: CredentialsKey(host), IdentityToken: secret}
	}
	if err := cfg.GetCredentialsStore(CredentialsKey(host)).Store(entry); err != nil {
		return "", fmt.Errorf("store credentials for %s in %s: %w", host, cfg.Filename, err)
	}
	if err := os.Chmod(cfg.Filename, 0o600); err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("store credentials for %s: %w", host, err)
	}
	return cfg.Filename, nil
}

// EraseCredentials removes what config.json under dir (or its credential
// helper) holds for host. It reports whether there was anything to remove.
func EraseCredentials(dir, host string) (bool, error) {
	cfg, err := loadDockerConfig(dir)
	if err != nil {
		return false, err
	}
	key := CredentialsKey(host)
	store := cfg.GetCredentialsStore(key)
	stored, err := store.Get(key)
	if err != nil {
		return false, fmt.Errorf("credentials for %s in %s: %w", host, cfg.Filename, err)
	}
	_, inFile := cfg.AuthConfigs[key]
	if stored == (types.AuthConfig{}) && !inFile {
		return false, nil
	}
	if err := store.Erase(key); err != nil {
		return false, fmt.Errorf("remove credentials for %s from %s: %w", host, cfg.Filename, err)
	}
	return true, nil
}

// StoredCredentials returns what config.json under dir holds for host;
// the zero AuthConfig when nothing.
func StoredCredentials(dir, host string) (AuthConfig, error) {
	if dir == "" {
		dir = DefaultDockerConfigDir()
	}
	return loadDockerCredentials(dir, host)
}

func loadDockerConfig(dir string) (*configfile.ConfigFile, error) {
	if dir == "" {
		dir = DefaultDockerConfigDir()
	}
	cfg, err := dockerconfig.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load docker config from %s: %w", filepath.Join(dir, dockerconfig.ConfigFileName), err)
	}
	return cfg, nil
}
