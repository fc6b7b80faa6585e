package images

import (
	"context"
	"crypto/tls"
	"net/http"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerhosts "github.com/containerd/containerd/v2/core/remotes/docker/config"
)

// RegistryOptions says how registries are reached: mirrors and TLS settings
// from a hosts directory, and where credentials come from.
type RegistryOptions struct {
	// HostsDir is a directory in containerd's certs.d layout
	// (<host>/hosts.toml, or _default/hosts.toml for every host).
	HostsDir string
	// Insecure skips TLS verification and falls back to plain HTTP for
	// every registry, like nerdctl's --insecure-registry.
	Insecure bool
	// DockerConfigDir holds config.json; empty means DefaultDockerConfigDir.
	DockerConfigDir string
}

// newResolver builds a resolver for one operation on ref. Explicit
// credentials are sent only to ref's own registry, never to its mirrors;
// every other host gets what config.json has for it.
func (o RegistryOptions) newResolver(ctx context.Context, ref Reference, auth *AuthConfig) (remotes.Resolver, error) {
	if err := checkHostsFile(o.HostsDir, ref.Domain); err != nil {
		return nil, err
	}
	configDir := o.DockerConfigDir
	if configDir == "" {
		configDir = DefaultDockerConfigDir()
	}
	credentials := func(host string) (string, string, error) {
		if auth != nil && !auth.empty() && sameRegistry(host, ref.Domain) {
			return auth.credentials()
		}
		stored, err := loadDockerCredentials(configDir, host)
		if err != nil {
			return "", "", err
		}
		return stored.credentials()
	}
	hostOptions := dockerhosts.HostOptions{Credentials: credentials}
	if o.HostsDir != "" {
		hostOptions.HostDir = dockerhosts.HostDirFromRoot(o.HostsDir)
	}
	if o.Insecure {
		// With a TLS config and the http scheme, containerd tries HTTPS first
		// and falls back to HTTP when the server does not speak TLS.
		hostOptions.DefaultTLS = &tls.Config{InsecureSkipVerify: true}
		hostOptions.DefaultScheme = "http"
	}
	headers := http.Header{}
	if auth != nil && auth.RegistryToken != "" {
		headers.Set("Authorization", "Bearer "+auth.RegistryToken)
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts:   dockerhosts.ConfigureHosts(ctx, hostOptions),
		Headers: headers,
	}), nil
}

func sameRegistry(host, domain string) bool {
	if host == domain {
		return true
	}
	return domain == "docker.io" && (host == "registry-1.docker.io" || host == "index.docker.io")
}
