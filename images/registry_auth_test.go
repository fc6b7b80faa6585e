package images_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// TestPullFromAuthenticatedTLSRegistry runs the whole credentials path
// against Debian's docker-registry with htpasswd auth over TLS: explicit
// credentials, config.json credentials, wrong credentials, and the CA
// given through the hosts dir.
func TestPullFromAuthenticatedTLSRegistry(t *testing.T) {
	e := newEnv(t)
	reg := testenv.NewDockerRegistry(t, testenv.DockerRegistryOptions{TLS: true, Users: map[string]string{"alice": "s3cret"}})
	host := reg.Host()

	img, err := builder().Busybox()
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: reg.CertPool()}}
	if err := testimages.Push(context.Background(), img, host+"/private/busybox:1",
		remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}), remote.WithTransport(transport)); err != nil {
		t.Fatal(err)
	}

	hostsDir := t.TempDir()
	writeHosts(t, hostsDir, host, fmt.Sprintf("server = %q\n[host.%q]\n  ca = %q\n", "https://"+host, "https://"+host, reg.CAFile()))
	emptyDockerConfig := t.TempDir()
	svc := images.NewService(e.client, images.ServiceOptions{Registry: images.RegistryOptions{HostsDir: hostsDir, DockerConfigDir: emptyDockerConfig}})
	ref := host + "/private/busybox:1"

	t.Run("no credentials", func(t *testing.T) {
		_, err := svc.Pull(e.ctx, ref, images.PullOptions{})
		if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), host) {
			t.Fatalf("err = %v, want Unauthenticated naming %s", err, host)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := svc.Pull(e.ctx, ref, images.PullOptions{Auth: &images.AuthConfig{Username: "alice", Password: "wrong"}})
		if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), host) {
			t.Fatalf("err = %v, want Unauthenticated naming %s", err, host)
		}
		if _, err := e.client.ImageService().Get(e.ctx, ref); !errdefs.IsNotFound(err) {
			t.Fatalf("image record after a refused pull: %v", err)
		}
	})
	t.Run("explicit credentials", func(t *testing.T) {
		if _, err := svc.Pull(e.ctx, ref, images.PullOptions{Auth: &images.AuthConfig{Username: "alice", Password: "s3cret"}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("auth field", func(t *testing.T) {
		auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
		if _, err := svc.Pull(e.ctx, ref, images.PullOptions{Auth: &images.AuthConfig{Auth: auth}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("config.json", func(t *testing.T) {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
		config := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		withConfig := images.NewService(e.client, images.ServiceOptions{Registry: images.RegistryOptions{HostsDir: hostsDir, DockerConfigDir: dir}})
		if _, err := withConfig.Pull(e.ctx, ref, images.PullOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		// containerd skips verification for loopback registries unless
		// the hosts file asks for it; without our CA the chain is unknown.
		strict := t.TempDir()
		writeHosts(t, strict, host, fmt.Sprintf("server = %q\n[host.%q]\n  skip_verify = false\n", "https://"+host, "https://"+host))
		noCA := images.NewService(e.client, images.ServiceOptions{Registry: images.RegistryOptions{HostsDir: strict, DockerConfigDir: emptyDockerConfig}})
		_, err := noCA.Pull(e.ctx, ref, images.PullOptions{Auth: &images.AuthConfig{Username: "alice", Password: "s3cret"}})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want a certificate error", err)
		}
	})
}

func writeHosts(t *testing.T, root, host, content string) {
	t.Helper()
	dir := filepath.Join(root, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPullThroughDefaultMirror pulls an image by its public name while a
// _default hosts.toml sends every registry to the local one, which is how
// the offline CRI tests serve registry.k8s.io images.
func TestPullThroughDefaultMirror(t *testing.T) {
	e := newEnv(t)
	host := testenv.NewRegistry(t, testenv.RegistryOptions{})
	pause, err := builder().Pause()
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(context.Background(), pause, host+"/pause:3.10"); err != nil {
		t.Fatal(err)
	}
	hostsDir := t.TempDir()
	writeHosts(t, hostsDir, "_default", fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host))
	svc := images.NewService(e.client, images.ServiceOptions{Registry: images.RegistryOptions{HostsDir: hostsDir}})
	img, err := svc.Pull(e.ctx, "registry.k8s.io/pause:3.10", images.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "registry.k8s.io/pause:3.10" {
		t.Fatalf("stored as %s, want registry.k8s.io/pause:3.10", img.Name)
	}
	if len(img.Config.Entrypoint) == 0 || img.Config.Entrypoint[0] != "/pause" {
		t.Fatalf("entrypoint %v, want /pause", img.Config.Entrypoint)
	}
}
