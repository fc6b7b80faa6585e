package containers

import (
	"testing"

	"github.com/containerd/errdefs"
)

func TestParsePortMapping(t *testing.T) {
	tests := []struct {
		in   string
		want PortMapping
	}{
		{"8080:80", PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		{"127.0.0.1:8080:80/udp", PortMapping{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
		{"[::1]:9000:90", PortMapping{HostIP: "::1", HostPort: 9000, ContainerPort: 90, Protocol: "tcp"}},
	}
	for _, tt := range tests {
		got, err := ParsePortMapping(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParsePortMapping(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	auto, err := ParsePortMapping("80")
	if err != nil || auto.HostPort != 0 || auto.ContainerPort != 80 {
		t.Errorf("ParsePortMapping(80) = %+v, %v; want host port 0 (picked later)", auto, err)
	}
	assigned, err := assignHostPorts([]PortMapping{auto, {HostPort: 8080, ContainerPort: 81, Protocol: "udp"}})
	if err != nil || assigned[0].HostPort == 0 || assigned[1].HostPort != 8080 {
		t.Errorf("assignHostPorts = %+v, %v", assigned, err)
	}
	for _, bad := range []string{"", "x:80", "8080:0", "8080:70000", "8080:80/sctp", "nope:8080:80", "1:2:3:4"} {
		if _, err := ParsePortMapping(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParsePortMapping(%q) err = %v, want InvalidArgument", bad, err)
		}
	}
	if s := (PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}).String(); s != "80/tcp -> 0.0.0.0:8080" {
		t.Errorf("String() = %q", s)
	}
}
