package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pushBlob uploads data as a blob of repo with a monolithic upload
// (POST, then PUT ?digest=) and returns its digest.
func pushBlob(t *testing.T, hc *http.Client, base, repo string, data []byte) string {
	t.Helper()
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	resp, err := hc.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+dgst, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish upload: %s", resp.Status)
	}
	return dgst
}

func getBlob(t *testing.T, base, repo, dgst string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/v2/" + repo + "/blobs/" + dgst)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s: %s", dgst, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if cl := resp.ContentLength; cl >= 0 && cl != int64(len(data)) {
		t.Errorf("Content-Length %d, body %d bytes", cl, len(data))
	}
	return data
}

func TestRegistryCorruptBlob(t *testing.T) {
	t.Parallel()
	good := []byte("the layer we leave alone")
	bad := []byte("the layer we corrupt, served with one byte flipped")
	badDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(bad))

	host := NewRegistry(t, RegistryOptions{Wrap: CorruptBlob(badDigest)})
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("host %q", host)
	}
	base := "http://" + host
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v2/: %s", resp.Status)
	}

	goodDigest := pushBlob(t, http.DefaultClient, base, "test/repo", good)
	if d := pushBlob(t, http.DefaultClient, base, "test/repo", bad); d != badDigest {
		t.Fatalf("digest %s, want %s", d, badDigest)
	}
	if got := getBlob(t, base, "test/repo", goodDigest); !bytes.Equal(got, good) {
		t.Errorf("untouched blob changed: %q", got)
	}
	got := getBlob(t, base, "test/repo", badDigest)
	if len(got) != len(bad) {
		t.Fatalf("corrupted blob has %d bytes, want %d", len(got), len(bad))
	}
	diff := 0
	for i := range got {
		if got[i] != bad[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Errorf("corrupted blob differs in %d bytes, want 1", diff)
	}
	if fmt.Sprintf("sha256:%x", sha256.Sum256(got)) == badDigest {
		t.Error("corrupted blob still matches its digest")
	}

	// HEAD is untouched: same length is advertised.
	resp, err = http.Head(base + "/v2/test/repo/blobs/" + badDigest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(bad)) {
		t.Errorf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
	}
}

func TestDockerRegistryTLSAuth(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := StartDockerRegistry(ctx, DockerRegistryOptions{TLS: true, Users: map[string]string{"alice": "s3cret", "bob": "hunter2"}})
	if errors.Is(err, ErrNotInstalled) {
		Require(t, false, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	if !strings.HasPrefix(r.Host(), "127.0.0.1:") || r.CAFile() == "" || r.CertPool() == nil {
		t.Fatalf("host %q, CA %q", r.Host(), r.CAFile())
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: r.Client().Transport}

	get := func(url, user, pass string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("https://"+r.Host()+"/v2/", "", ""); c != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", c)
	}
	if c := get("https://"+r.Host()+"/v2/", "alice", "wrong"); c != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", c)
	}
	if c := get("https://"+r.Host()+"/v2/", "alice", "s3cret"); c != http.StatusOK {
		t.Errorf("alice: %d, want 200", c)
	}
	if c := get("https://"+r.Host()+"/v2/", "bob", "hunter2"); c != http.StatusOK {
		t.Errorf("bob: %d, want 200", c)
	}
	// The SAN localhost is valid too.
	port := r.Host()[strings.LastIndex(r.Host(), ":")+1:]
	if c := get("https://localhost:"+port+"/v2/", "alice", "s3cret"); c != http.StatusOK {
		t.Errorf("via localhost: %d, want 200", c)
	}
	// A client without the CA must refuse the certificate.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + r.Host() + "/v2/"); err == nil {
		t.Error("system trust store accepted the test CA's certificate")
	}

	host := r.Host()
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertPortFree(t, host)
}

func TestDockerRegistryPlain(t *testing.T) {
	t.Parallel()
	r := NewDockerRegistry(t, DockerRegistryOptions{})
	if r.CAFile() != "" || r.CertPool() != nil {
		t.Errorf("plain registry has CA %q", r.CAFile())
	}
	base := "http://" + r.Host()
	resp, err := http.Get(base + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v2/: %s", resp.Status)
	}
	data := []byte("hello registry")
	dgst := pushBlob(t, http.DefaultClient, base, "kctr/blob", data)
	if got := getBlob(t, base, "kctr/blob", dgst); !bytes.Equal(got, data) {
		t.Errorf("blob round trip: %q", got)
	}
	host := r.Host()
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	assertPortFree(t, host)
}

// assertPortFree checks that the port can be bound again after Stop.
func assertPortFree(t *testing.T, host string) {
	t.Helper()
	ln, err := net.Listen("tcp", host)
	if err != nil {
		t.Fatalf("port of stopped registry still busy: %v", err)
	}
	ln.Close()
}
