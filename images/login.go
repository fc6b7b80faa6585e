package images

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	dockerhosts "github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
)

// RegistryHost turns what users give `login` and `logout` into a registry
// host: "" and Docker Hub's many spellings become "docker.io", a scheme and
// a path ("https://reg:5000/v2/") are dropped.
func RegistryHost(server string) (string, error) {
	host := strings.TrimSpace(server)
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	switch host {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io", nil
	}
	if strings.ContainsAny(host, " \t\n@?#") {
		return "", fmt.Errorf("invalid registry server %q: %w", server, errdefs.ErrInvalidArgument)
	}
	return host, nil
}

// CredentialsKey is the key config.json stores host's credentials under
// (Docker Hub's is its historical v1 index URL).
func CredentialsKey(host string) string {
	return dockerConfigKey(host)
}

// Login checks that the registry at host (see RegistryHost) accepts auth,
// reaching it the way a push would: through the hosts dir's TLS settings and
// endpoints that can push, so mirrors never see the credentials. A refusal
// is an Unauthenticated error naming the registry.
func (o RegistryOptions) Login(ctx context.Context, host string, auth AuthConfig) error {
	if err := checkHostsFile(o.HostsDir, host); err != nil {
		return err
	}
	username, secret, err := auth.credentials()
	if err != nil {
		return fmt.Errorf("login to %s: %w", host, err)
	}
	hostOptions := dockerhosts.HostOptions{
		Credentials: func(string) (string, string, error) { return username, secret, nil },
	}
	if o.HostsDir != "" {
		hostOptions.HostDir = dockerhosts.HostDirFromRoot(o.HostsDir)
	}
	if o.Insecure {
		hostOptions.DefaultTLS = &tls.Config{InsecureSkipVerify: true}
		hostOptions.DefaultScheme = "http"
	}
	hosts, err := dockerhosts.ConfigureHosts(ctx, hostOptions)(host)
	if err != nil {
		return fmt.Errorf("login to %s: registry hosts from %s: %v: %w", host, o.HostsDir, err, errdefs.ErrInvalidArgument)
	}
	var candidates []docker.RegistryHost
	for _, h := range hosts {
		if h.Capabilities.Has(docker.HostCapabilityPush) {
			candidates = append(candidates, h)
		}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("login to %s: the hosts dir gives it no endpoint that can push: %w", host, errdefs.ErrInvalidArgument)
	}
	var lastErr error
	for _, h := range candidates {
		err := checkLogin(ctx, h, username)
		if err == nil || errdefs.IsUnauthorized(err) {
			if err != nil {
				return fmt.Errorf("login to %s: %w", host, err)
			}
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("login to %s: %w", host, lastErr)
}

// checkLogin asks for /v2/ at one endpoint, answers the registry's
// challenge (basic auth, or a token from its token service) and asks again.
func checkLogin(ctx context.Context, h docker.RegistryHost, username string) error {
	url := h.Scheme + "://" + h.Host + h.Path + "/"
	get := func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range h.Header {
			req.Header[k] = v
		}
		return req, nil
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	do := func(req *http.Request) (*http.Response, error) {
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("reach registry at %s: %w", url, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp, nil
	}
	refused := func(status string) error {
		who := "anonymous access"
		if username != "" {
			who = fmt.Sprintf("the credentials of user %q", username)
		}
		return fmt.Errorf("registry %s refused %s (%s): %w", h.Host, who, status, errdefs.ErrUnauthenticated)
	}

	req, err := get()
	if err != nil {
		return err
	}
	resp, err := do(req)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode != http.StatusUnauthorized:
		return fmt.Errorf("registry at %s answered %s, not a registry v2 API?", url, resp.Status)
	case h.Authorizer == nil:
		return refused(resp.Status)
	}
	if err := h.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
		// No credentials for a basic challenge, or a scheme containerd
		// does not speak: either way the registry's 401 stands.
		return refused(resp.Status)
	}
	req, err = get()
	if err != nil {
		return err
	}
	if err := h.Authorizer.Authorize(ctx, req); err != nil {
		// A token service that refuses the credentials fails here.
		if strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "403") {
			return refused(err.Error())
		}
		return fmt.Errorf("registry %s: get a token: %w", h.Host, err)
	}
	resp, err = do(req)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return refused(resp.Status)
	}
	return fmt.Errorf("registry at %s answered %s", url, resp.Status)
}
