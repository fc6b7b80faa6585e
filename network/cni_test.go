package network

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	gocni "github.com/containerd/go-cni"
)

func TestPodIPs(t *testing.T) {
	res := &gocni.Result{Interfaces: map[string]*gocni.Config{
		"lo": {IPConfigs: []*gocni.IPConfig{{IP: net.ParseIP("127.0.0.1")}}},
		"eth0": {IPConfigs: []*gocni.IPConfig{
			{IP: net.ParseIP("fd00::5")},
			{IP: net.ParseIP("10.1.2.3")},
		}},
		"cni0": {IPConfigs: []*gocni.IPConfig{{IP: net.ParseIP("10.1.0.1")}}},
	}}
	if got := podIPs(res); !slices.Equal(got, []string{"10.1.2.3", "fd00::5"}) {
		t.Errorf("podIPs = %v", got)
	}
	noEth0 := &gocni.Result{Interfaces: map[string]*gocni.Config{
		"lo":   {IPConfigs: []*gocni.IPConfig{{IP: net.ParseIP("127.0.0.1")}}},
		"net1": {IPConfigs: []*gocni.IPConfig{{IP: net.ParseIP("10.9.9.9")}}},
	}}
	if got := podIPs(noEth0); !slices.Equal(got, []string{"10.9.9.9"}) {
		t.Errorf("podIPs without eth0 = %v", got)
	}
	if podIPs(nil) != nil {
		t.Error("podIPs(nil)")
	}
}

func TestNamespaceOptionsSkipsPortsWithoutHostPort(t *testing.T) {
	opts := namespaceOptions(AttachOptions{PortMappings: []PortMapping{
		{ContainerPort: 80, Protocol: "tcp"},
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
	}})
	if len(opts) != 1 {
		t.Fatalf("%d namespace options, want 1 (port map)", len(opts))
	}
}

func TestStatusNamesMissingConfig(t *testing.T) {
	dir := t.TempDir()
	m, err := NewManager(Options{BinDirs: []string{t.TempDir()}, ConfDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Status()
	if !errors.Is(err, ErrNoConfig) || !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Status without config: %v", err)
	}
	conf := `{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "kcrid-no-such-plugin"}]}`
	if err := os.WriteFile(filepath.Join(dir, "10-n.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Status(); err == nil {
		t.Fatal("Status with a missing plugin binary succeeded")
	}
}
