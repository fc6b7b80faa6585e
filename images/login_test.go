package images_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/images"
)

func TestRegistryHost(t *testing.T) {
	tests := map[string]string{
		"":                             "docker.io",
		"docker.io":                    "docker.io",
		"https://index.docker.io/v1/":  "docker.io",
		"registry-1.docker.io":         "docker.io",
		"127.0.0.1:5000":               "127.0.0.1:5000",
		"https://reg.example:5000/v2/": "reg.example:5000",
		"http://[::1]:5000":            "[::1]:5000",
	}
	for in, want := range tests {
		got, err := images.RegistryHost(in)
		if err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := images.RegistryHost("user@host"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("RegistryHost(user@host) err = %v, want InvalidArgument", err)
	}
	if got := images.CredentialsKey("docker.io"); got != "https://index.docker.io/v1/" {
		t.Errorf("CredentialsKey(docker.io) = %q", got)
	}
}

func TestStoreAndEraseCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	// An existing, too readable config.json with settings of its own.
	existing := `{"auths": {"other:5000": {"auth": "eDp5"}}, "psFormat": "table {{.ID}}"}`
	if err := os.WriteFile(path, []byte(existing), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := images.StoreCredentials(dir, "reg:5000", images.AuthConfig{Username: "alice", Password: "s3cret"})
	if err != nil || got != path {
		t.Fatalf("StoreCredentials = %q, %v", got, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	var cfg map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["psFormat"] != "table {{.ID}}" || len(cfg["auths"].(map[string]any)) != 2 {
		t.Errorf("other settings lost: %s", data)
	}
	if strings.Contains(string(data), "s3cret") {
		t.Errorf("clear-text password in config.json: %s", data)
	}
	stored, err := images.StoredCredentials(dir, "reg:5000")
	if err != nil || stored.Username != "alice" || stored.Password != "s3cret" {
		t.Errorf("StoredCredentials = %+v, %v", stored, err)
	}

	if found, err := images.EraseCredentials(dir, "reg:5000"); !found || err != nil {
		t.Fatalf("EraseCredentials = %v, %v", found, err)
	}
	if found, err := images.EraseCredentials(dir, "reg:5000"); found || err != nil {
		t.Fatalf("second EraseCredentials = %v, %v", found, err)
	}
	if stored, _ := images.StoredCredentials(dir, "reg:5000"); stored != (images.AuthConfig{}) {
		t.Errorf("credentials left: %+v", stored)
	}
	// A fresh config dir is created owner-only.
	fresh := filepath.Join(t.TempDir(), "new")
	if _, err := images.StoreCredentials(fresh, "docker.io", images.AuthConfig{Username: "bob", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(fresh, "config.json"))
	if !strings.Contains(string(data), `"https://index.docker.io/v1/"`) {
		t.Errorf("Docker Hub stored under the wrong key: %s", data)
	}
}

// TestLoginChallenges answers the two challenges registries use: basic
// auth (distribution with htpasswd) and a bearer token from a token
// service (Docker Hub, Harbor, GitLab).
func TestLoginChallenges(t *testing.T) {
	basic := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "s3cret" && r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer basic.Close()

	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			u, p, ok = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		}
		if !ok || u != "alice" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": "t0ken", "access_token": "t0ken"})
	}))
	defer tokens.Close()
	bearer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer t0ken" {
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokens.URL+`/token",service="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer bearer.Close()

	ctx := context.Background()
	opts := images.RegistryOptions{}
	for name, srv := range map[string]*httptest.Server{"basic": basic, "bearer": bearer} {
		host := strings.TrimPrefix(srv.URL, "http://")
		t.Run(name, func(t *testing.T) {
			if err := opts.Login(ctx, host, images.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
				t.Fatalf("right password: %v", err)
			}
			err := opts.Login(ctx, host, images.AuthConfig{Username: "alice", Password: "wrong"})
			if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("wrong password: err = %v, want Unauthenticated naming %s and not the password", err, host)
			}
			if err := opts.Login(ctx, host, images.AuthConfig{}); !errdefs.IsUnauthorized(err) {
				t.Fatalf("no credentials: err = %v, want Unauthenticated", err)
			}
		})
	}

	t.Run("nothing listening", func(t *testing.T) {
		closed := httptest.NewServer(http.NotFoundHandler())
		host := strings.TrimPrefix(closed.URL, "http://")
		closed.Close()
		err := opts.Login(ctx, host, images.AuthConfig{Username: "alice", Password: "s3cret"})
		if err == nil || errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), host) {
			t.Fatalf("err = %v, want a connection error naming %s", err, host)
		}
	})
	t.Run("mirrors never see the credentials", func(t *testing.T) {
		var mirrorHits int
		mirror := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { mirrorHits++ }))
		defer mirror.Close()
		hostsDir := t.TempDir()
		host := strings.TrimPrefix(basic.URL, "http://")
		writeHosts(t, hostsDir, host, "[host.\""+mirror.URL+"\"]\n  capabilities = [\"pull\", \"resolve\"]\n")
		if err := (images.RegistryOptions{HostsDir: hostsDir}).Login(ctx, host, images.AuthConfig{Username: "alice", Password: "s3cret"}); err != nil {
			t.Fatal(err)
		}
		if mirrorHits != 0 {
			t.Fatalf("the mirror got %d requests", mirrorHits)
		}
	})
	t.Run("pull-only hosts", func(t *testing.T) {
		hostsDir := t.TempDir()
		host := strings.TrimPrefix(basic.URL, "http://")
		writeHosts(t, hostsDir, host, "server = \"http://"+host+"\"\ncapabilities = [\"pull\", \"resolve\"]\n")
		err := images.RegistryOptions{HostsDir: hostsDir}.Login(ctx, host, images.AuthConfig{Username: "alice", Password: "s3cret"})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "push") {
			t.Fatalf("err = %v, want InvalidArgument about push endpoints", err)
		}
	})
}
