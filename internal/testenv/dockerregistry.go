package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// DockerRegistryOptions configures a docker-registry (distribution 2.8)
// instance.
type DockerRegistryOptions struct {
	// TLS serves HTTPS with a certificate from a CA made at start (see
	// CAFile/CertPool).
	TLS bool
	// Users, if not empty, turns on htpasswd basic auth with these
	// user → password pairs.
	Users map[string]string
}

// DockerRegistry is Debian's docker-registry, a real registry v2 server,
// on 127.0.0.1 with storage in its own temp dir. Unlike the in-process
// Registry it speaks TLS and auth the way production registries do.
type DockerRegistry struct {
	dir    string
	host   string
	tls    bool
	caFile string
	pool   *x509.CertPool
	proc   *process

	stopOnce sync.Once
	stopErr  error
}

const dockerRegistryStartTimeout = 20 * time.Second

var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// DockerRegistryBinary finds docker-registry, or returns an error wrapping
// ErrNotInstalled.
func DockerRegistryBinary() (string, error) {
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	if isExecutable("/usr/bin/docker-registry") {
		return "/usr/bin/docker-registry", nil
	}
	return "", fmt.Errorf("docker-registry: %w (apt-get install docker-registry)", ErrNotInstalled)
}

// StartDockerRegistry starts docker-registry and returns once /v2/
// answers (401 counts: auth is then working). The registry binds
// 127.0.0.1:0 itself and we read the port back from its log, so there is
// no window in which another process could take a port we picked.
func StartDockerRegistry(ctx context.Context, opts DockerRegistryOptions) (*DockerRegistry, error) {
	bin, err := DockerRegistryBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kctr-registry-")
	if err != nil {
		return nil, err
	}
	r := &DockerRegistry{dir: dir, tls: opts.TLS}
	if err := r.start(ctx, bin, opts); err != nil {
		tail := ""
		if r.proc != nil {
			_ = r.proc.stop(5 * time.Second)
			tail = "\n--- docker-registry log (tail) ---\n" + r.proc.logTail(30)
		}
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("docker-registry: %w%s", err, tail)
	}
	return r, nil
}

func (r *DockerRegistry) start(ctx context.Context, bin string, opts DockerRegistryOptions) error {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	httpCfg := map[string]any{
		"addr": "127.0.0.1:0",
		// A fixed secret avoids the "No HTTP secret provided" warning.
		"secret":  hex.EncodeToString(secret),
		"headers": map[string]any{"X-Content-Type-Options": []string{"nosniff"}},
	}
	cfg := map[string]any{
		"version": "0.1",
		"log": map[string]any{
			// info, because the "listening on" line is how we learn the port.
			"level":     "info",
			"formatter": "text",
			"accesslog": map[string]any{"disabled": true},
		},
		"storage": map[string]any{
			"filesystem":  map[string]any{"rootdirectory": filepath.Join(r.dir, "data")},
			"delete":      map[string]any{"enabled": true},
			"maintenance": map[string]any{"uploadpurging": map[string]any{"enabled": false}},
		},
		"http":   httpCfg,
		"health": map[string]any{"storagedriver": map[string]any{"enabled": false}},
	}
	if opts.TLS {
		certs, err := newSelfSignedTLS("kctr-testenv-registry")
		if err != nil {
			return err
		}
		r.caFile = filepath.Join(r.dir, "ca.pem")
		certFile := filepath.Join(r.dir, "server.pem")
		keyFile := filepath.Join(r.dir, "server-key.pem")
		for path, data := range map[string][]byte{r.caFile: certs.caPEM, certFile: certs.certPEM, keyFile: certs.keyPEM} {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				return err
			}
		}
		if err := os.Chmod(r.caFile, 0o644); err != nil {
			return err
		}
		r.pool = x509.NewCertPool()
		r.pool.AppendCertsFromPEM(certs.caPEM)
		httpCfg["tls"] = map[string]any{"certificate": certFile, "key": keyFile}
	}
	if len(opts.Users) > 0 {
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, opts.Users); err != nil {
			return err
		}
		cfg["auth"] = map[string]any{"htpasswd": map[string]any{"realm": "kctr-testenv", "path": htpasswd}}
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return err
	}
	r.proc, err = startProcess("docker-registry", bin, []string{"serve", cfgPath}, os.Environ(), filepath.Join(r.dir, "registry.log"))
	if err != nil {
		return err
	}
	return r.waitReady(ctx)
}

// writeHtpasswd writes bcrypt entries, the only hash distribution accepts.
// MinCost because the registry verifies the password on every request and
// these are throw-away test credentials.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("invalid registry user name %q", u)
		}
		names = append(names, u)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func (r *DockerRegistry) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dockerRegistryStartTimeout)
	defer cancel()
	hc := r.Client()
	hc.Timeout = 2 * time.Second
	defer hc.CloseIdleConnections()
	var lastErr error
	for {
		if r.proc.exited() {
			return fmt.Errorf("exited during startup (%s)", r.proc.exitStatus())
		}
		if r.host == "" {
			if data, err := os.ReadFile(r.proc.logPath); err == nil {
				if m := listeningRE.FindSubmatch(data); m != nil {
					r.host = string(m[1])
				}
			}
		}
		if r.host != "" {
			resp, err := hc.Get(r.URL() + "/v2/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
					return nil
				}
				err = fmt.Errorf("GET /v2/: %s", resp.Status)
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if r.host == "" {
				lastErr = errors.New(`no "listening on" line in the log`)
			}
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), lastErr)
		case <-r.proc.done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Host is "127.0.0.1:PORT".
func (r *DockerRegistry) Host() string { return r.host }

// URL is "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT".
func (r *DockerRegistry) URL() string {
	if r.tls {
		return "https://" + r.host
	}
	return "http://" + r.host
}

// CAFile is the PEM file of the CA that signed the server certificate
// ("" without TLS), e.g. for a containerd hosts.toml `ca` entry.
func (r *DockerRegistry) CAFile() string { return r.caFile }

// CertPool holds just that CA (nil without TLS).
func (r *DockerRegistry) CertPool() *x509.CertPool { return r.pool }

// Client returns an HTTP client that trusts CertPool (and nothing else).
func (r *DockerRegistry) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// Dir holds config, storage, certificates and the log (registry.log).
func (r *DockerRegistry) Dir() string { return r.dir }

// LogTail returns about the last n lines of the registry log.
func (r *DockerRegistry) LogTail(n int) string { return r.proc.logTail(n) }

// Stop stops the registry (SIGTERM, SIGKILL after 10s) and removes its
// dir. Safe to call more than once.
func (r *DockerRegistry) Stop() error {
	r.stopOnce.Do(func() {
		var errs []error
		if r.proc.exited() {
			errs = append(errs, fmt.Errorf("docker-registry had exited before Stop (%s); log tail:\n%s", r.proc.exitStatus(), r.proc.logTail(20)))
		}
		errs = append(errs, r.proc.stop(10*time.Second), os.RemoveAll(r.dir))
		r.stopErr = errors.Join(errs...)
	})
	return r.stopErr
}

// NewDockerRegistry starts docker-registry for a test and stops it in
// t.Cleanup; a missing binary skips the test (fails it when CI=true).
func NewDockerRegistry(t testing.TB, opts DockerRegistryOptions) *DockerRegistry {
	t.Helper()
	r, err := StartDockerRegistry(context.Background(), opts)
	if errors.Is(err, ErrNotInstalled) {
		Require(t, false, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}
