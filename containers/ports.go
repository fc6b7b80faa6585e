package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// PortMapping forwards a host port into the container (Docker's -p).
type PortMapping struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

func (p PortMapping) String() string {
	hostIP := p.HostIP
	if hostIP == "" {
		hostIP = "0.0.0.0"
	}
	return fmt.Sprintf("%d/%s -> %s", p.ContainerPort, p.Protocol, net.JoinHostPort(hostIP, strconv.Itoa(int(p.HostPort))))
}

// ParsePortMapping reads Docker's -p syntax:
// [[hostIP:]hostPort:]containerPort[/tcp|udp]. Without a host port,
// HostPort stays 0 and creating the container picks a free one, as Docker
// does.
func ParsePortMapping(spec string) (PortMapping, error) {
	bad := func(why string) (PortMapping, error) {
		return PortMapping{}, fmt.Errorf("invalid port mapping %q: %s: %w", spec, why, errdefs.ErrInvalidArgument)
	}
	rest, proto, hasProto := strings.Cut(spec, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol must be tcp or udp")
	}
	var hostIP, hostPort, containerPort string
	if i := strings.LastIndex(rest, ":"); i < 0 {
		containerPort = rest
	} else {
		containerPort = rest[i+1:]
		hostPart := rest[:i]
		if j := strings.LastIndex(hostPart, ":"); j >= 0 {
			hostIP, hostPort = strings.Trim(hostPart[:j], "[]"), hostPart[j+1:]
		} else {
			hostPort = hostPart
		}
	}
	if hostIP != "" && net.ParseIP(hostIP) == nil {
		return bad(fmt.Sprintf("host IP %q is not an IP address", hostIP))
	}
	cport, err := parsePort(containerPort)
	if err != nil {
		return bad("container port " + err.Error())
	}
	mapping := PortMapping{HostIP: hostIP, ContainerPort: cport, Protocol: proto}
	if hostPort == "" {
		return mapping, nil
	}
	if mapping.HostPort, err = parsePort(hostPort); err != nil {
		return bad("host port " + err.Error())
	}
	return mapping, nil
}

func parsePort(s string) (int32, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return int32(n), nil
}

// assignHostPorts picks free host ports where none was given.
func assignHostPorts(ports []PortMapping) ([]PortMapping, error) {
	out := append([]PortMapping(nil), ports...)
	for i, p := range out {
		if p.HostPort != 0 {
			continue
		}
		free, err := freePort(p.Protocol, p.HostIP)
		if err != nil {
			return nil, fmt.Errorf("pick a free host port for %d/%s: %w", p.ContainerPort, p.Protocol, err)
		}
		out[i].HostPort = free
	}
	return out, nil
}

// freePort asks the kernel for a port that is free right now.
func freePort(proto, hostIP string) (int32, error) {
	addr := net.JoinHostPort(hostIP, "0")
	if proto == "udp" {
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return int32(conn.LocalAddr().(*net.UDPAddr).Port), nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port), nil
}

// Ports lists what a container publishes.
func (m *Manager) Ports(ctx context.Context, idOrName string) ([]PortMapping, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	labels, err := container.Labels(ctx)
	if err != nil {
		return nil, err
	}
	var ports []PortMapping
	if raw := labels[LabelPorts]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &ports); err != nil {
			return nil, fmt.Errorf("read port mappings of %s: %w", idOrName, err)
		}
	}
	return ports, nil
}
