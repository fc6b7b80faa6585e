package images

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseReference(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in       string
		want     string
		familiar string
		domain   string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io"},
		{"user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io"},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io"},
		{"127.0.0.1:5000/kctr/busybox", "127.0.0.1:5000/kctr/busybox:latest", "127.0.0.1:5000/kctr/busybox:latest", "127.0.0.1:5000"},
		{"localhost/app:dev", "localhost/app:dev", "localhost/app:dev", "localhost"},
		{"localhost:5000/a/b/c:tag", "localhost:5000/a/b/c:tag", "localhost:5000/a/b/c:tag", "localhost:5000"},
		{"busybox@" + digest, "docker.io/library/busybox@" + digest, "busybox@" + digest, "docker.io"},
		{"busybox:1@" + digest, "docker.io/library/busybox@" + digest, "busybox@" + digest, "docker.io"},
		{"[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ref, err := ParseReference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := ref.Familiar(); got != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", got, tt.familiar)
			}
			if ref.Domain != tt.domain {
				t.Errorf("Domain = %q, want %q", ref.Domain, tt.domain)
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	for _, in := range []string{"", " ", "Busybox", "busybox:", "busybox@sha256:short", "a//b", "-leading", "busybox:bad tag", "http://registry/app"} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseReference(in)
			if err == nil {
				t.Fatalf("ParseReference(%q) succeeded, want an error", in)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
			if strings.TrimSpace(in) != "" && !strings.Contains(err.Error(), in) {
				t.Errorf("error %q does not name the bad reference %q", err, in)
			}
		})
	}
}

// FuzzParseReference checks that any input either fails cleanly or yields
// a reference whose stored name parses back to itself.
func FuzzParseReference(f *testing.F) {
	for _, seed := range []string{"busybox", "a/b:c", "127.0.0.1:5000/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "[::1]/x", "UP", "x:y:z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ref, err := ParseReference(in)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ParseReference(%q) error is not InvalidArgument: %v", in, err)
			}
			return
		}
		again, err := ParseReference(ref.String())
		if err != nil {
			t.Fatalf("stored name %q of %q does not parse: %v", ref.String(), in, err)
		}
		if again.String() != ref.String() {
			t.Fatalf("not idempotent: %q → %q → %q", in, ref.String(), again.String())
		}
	})
}
