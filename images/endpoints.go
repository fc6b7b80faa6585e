package images

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerhosts "github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
)

// Endpoint is one URL a registry host is reached at once mirrors from the
// hosts dir are applied, in the order they are tried.
type Endpoint struct {
	URL     string `json:"url"`
	Pull    bool   `json:"pull"`
	Resolve bool   `json:"resolve"`
	Push    bool   `json:"push"`
}

// Endpoints tells where pulls and pushes for host go. It reads the hosts
// dir the same way a pull does, so a broken hosts.toml shows up here too.
func (o RegistryOptions) Endpoints(ctx context.Context, host string) ([]Endpoint, error) {
	if err := checkHostsFile(o.HostsDir, host); err != nil {
		return nil, err
	}
	hostOptions := dockerhosts.HostOptions{}
	if o.HostsDir != "" {
		hostOptions.HostDir = dockerhosts.HostDirFromRoot(o.HostsDir)
	}
	if o.Insecure {
		hostOptions.DefaultScheme = "http"
	}
	hosts, err := dockerhosts.ConfigureHosts(ctx, hostOptions)(host)
	if err != nil {
		return nil, fmt.Errorf("registry hosts for %s from %s: %v: %w", host, o.HostsDir, err, errdefs.ErrInvalidArgument)
	}
	out := make([]Endpoint, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, Endpoint{
			URL:     h.Scheme + "://" + h.Host + h.Path,
			Pull:    h.Capabilities.Has(docker.HostCapabilityPull),
			Resolve: h.Capabilities.Has(docker.HostCapabilityResolve),
			Push:    h.Capabilities.Has(docker.HostCapabilityPush),
		})
	}
	return out, nil
}
