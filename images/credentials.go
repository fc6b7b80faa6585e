package images

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
)

// AuthConfig carries registry credentials in the shapes the CRI and Docker
// use. Only one of the forms needs to be set.
type AuthConfig struct {
	Username string
	Password string
	// Auth is base64("username:password"), as stored in config.json.
	Auth string
	// IdentityToken is a long-lived refresh token exchanged for access tokens.
	IdentityToken string
	// RegistryToken is a bearer token sent to the registry as is.
	RegistryToken string
}

// credentials returns the username and secret containerd's authorizer wants.
// An empty username with a secret means the secret is an identity token.
func (a AuthConfig) credentials() (string, string, error) {
	if a.IdentityToken != "" {
		return "", a.IdentityToken, nil
	}
	if a.Username != "" || a.Password != "" {
		return a.Username, a.Password, nil
	}
	if a.Auth != "" {
		decoded, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", "", fmt.Errorf("decode auth: %w", err)
		}
		user, pass, ok := strings.Cut(string(decoded), ":")
		if !ok {
			return "", "", fmt.Errorf("decode auth: want base64 of \"username:password\"")
		}
		return user, pass, nil
	}
	return "", "", nil
}

func (a AuthConfig) empty() bool {
	return a == AuthConfig{}
}

// DefaultDockerConfigDir is where docker, nerdctl and kctr keep config.json:
// $DOCKER_CONFIG, else ~/.docker.
func DefaultDockerConfigDir() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// dockerConfigKey maps a registry host to the key Docker uses in config.json;
// Docker Hub is stored under its historical v1 index URL.
func dockerConfigKey(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "https://index.docker.io/v1/"
	}
	return host
}

// loadDockerCredentials reads the credentials for host from config.json in
// dir, including credential helpers and stores configured there. A missing
// file means no credentials, not an error.
func loadDockerCredentials(dir, host string) (AuthConfig, error) {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); os.IsNotExist(err) {
		return AuthConfig{}, nil
	}
	cfg, err := dockerconfig.Load(dir)
	if err != nil {
		return AuthConfig{}, fmt.Errorf("load docker config from %s: %w", dir, err)
	}
	ac, err := cfg.GetAuthConfig(dockerConfigKey(host))
	if err != nil {
		return AuthConfig{}, fmt.Errorf("credentials for %s from %s: %w", host, dir, err)
	}
	return AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}, nil
}
