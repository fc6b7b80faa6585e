package testenv

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// RegistryOptions configures the in-process registry.
type RegistryOptions struct {
	// Wrap, if set, wraps the registry handler, e.g. CorruptBlob, so a
	// test can observe or falsify what clients get.
	Wrap func(http.Handler) http.Handler
}

// Registry is an in-memory OCI registry (go-containerregistry's
// pkg/registry) served over plain HTTP on 127.0.0.1: fast, no daemon, and
// fully under the test's control.
type Registry struct {
	srv *httptest.Server
}

// StartRegistry serves a fresh in-memory registry on 127.0.0.1:<free port>.
func StartRegistry(opts RegistryOptions) *Registry {
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	// httptest binds 127.0.0.1:0 itself and keeps the listener: no window
	// in which another process could take the port.
	return &Registry{srv: httptest.NewServer(h)}
}

// Host is "127.0.0.1:PORT", usable as the registry part of a reference.
func (r *Registry) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// URL is "http://127.0.0.1:PORT".
func (r *Registry) URL() string { return r.srv.URL }

// Close stops serving and drops all content.
func (r *Registry) Close() { r.srv.Close() }

// NewRegistry starts an in-process registry closed on test cleanup and
// returns its host ("127.0.0.1:PORT", plain HTTP).
func NewRegistry(t testing.TB, opts RegistryOptions) string {
	t.Helper()
	r := StartRegistry(opts)
	t.Cleanup(r.Close)
	return r.Host()
}

// CorruptBlob returns a Wrap that serves the blob (or manifest fetched by
// digest) with the given digest with one byte flipped. Length and headers
// stay the same, so only digest verification can notice. Other content
// passes through untouched.
func CorruptBlob(digest string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodGet || !servesDigest(req.URL.Path, digest) {
				next.ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			if rec.Code/100 == 2 && len(body) > 0 {
				body = bytes.Clone(body)
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

// servesDigest matches /v2/<name>/blobs/<digest> and
// /v2/<name>/manifests/<digest>.
func servesDigest(path, digest string) bool {
	return strings.HasPrefix(path, "/v2/") &&
		(strings.HasSuffix(path, "/blobs/"+digest) || strings.HasSuffix(path, "/manifests/"+digest))
}

// WritePlainHTTPHost adds host to a hosts dir (containerd's certs.d layout)
// as a plain-HTTP registry for pull and resolve, which containerd's CRI
// plugin needs for a registry on 127.0.0.1 without TLS.
func WritePlainHTTPHost(hostsDir, host string) error {
	dir := filepath.Join(hostsDir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	content := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host, "http://"+host)
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(content), 0o644)
}

// WriteDefaultMirror writes hostsDir/_default/hosts.toml sending every
// registry host that has no directory of its own to the plain-HTTP
// registry at host ("127.0.0.1:PORT"), so images pushed there under their
// repository paths pull under their original names (registry.k8s.io/...,
// gcr.io/...) without -registry-prefix style renaming.
func WriteDefaultMirror(hostsDir, host string) error {
	dir := filepath.Join(hostsDir, "_default")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	content := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host)
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(content), 0o644)
}
