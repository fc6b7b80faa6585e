package containers

import (
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseVolume(t *testing.T) {
	good := map[string]Mount{
		"/data:/data":   {Source: "/data", Destination: "/data"},
		"/data:/srv:ro": {Source: "/data", Destination: "/srv", ReadOnly: true},
		"/a/b:/c/d:rw":  {Source: "/a/b", Destination: "/c/d"},
	}
	for in, want := range good {
		got, err := ParseVolume(in)
		if err != nil || got != want {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"/data", "named:/data", "/data:rel", "/a:/b:rx", "/a:/b:ro:x", ""} {
		if _, err := ParseVolume(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseVolume(%q) err = %v, want InvalidArgument", bad, err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1048576": 1 << 20, "512m": 512 << 20, "1g": 1 << 30, "64k": 64 << 10, "1.5g": 3 << 29, "100b": 100} {
		got, err := ParseMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "-1m", "0", "1t"} {
		if _, err := ParseMemory(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseMemory(%q) err = %v", bad, err)
		}
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]string{"": "", "no": "", "always": "always", "unless-stopped": "unless-stopped", "on-failure": "on-failure", "on-failure:3": "on-failure:3"} {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("ParseRestartPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:x", "always:3"} {
		if _, err := ParseRestartPolicy(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseRestartPolicy(%q) err = %v", bad, err)
		}
	}
}

func TestNormalizeCapabilities(t *testing.T) {
	got := normalizeCapabilities([]string{"net_admin", "CAP_CHOWN", "all"})
	want := []string{"CAP_NET_ADMIN", "CAP_CHOWN", "ALL"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
