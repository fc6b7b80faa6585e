package endpoints

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Source says where an endpoint came from.
type Source string

// Sources of an endpoint (or of the config file path).
const (
	SourceFlag          Source = "flag"
	SourceEnv           Source = "env"
	SourceConfig        Source = "config"
	SourceDefault       Source = "default"
	SourceDefaultLegacy Source = "default-legacy"
	// SourceRuntime marks an image endpoint that was not set anywhere and
	// therefore follows the resolved runtime endpoint.
	SourceRuntime Source = "runtime"
)

// Environment variables read through Options.Getenv.
const (
	EnvRuntimeEndpoint = "CONTAINER_RUNTIME_ENDPOINT"
	EnvImageEndpoint   = "IMAGE_SERVICE_ENDPOINT"
	EnvConfigFile      = "CRI_CONFIG_FILE"
)

// DefaultConfigPath is the config file read when neither --config nor
// $CRI_CONFIG_FILE names one.
const DefaultConfigPath = "/etc/crictl.yaml"

// DefaultTimeout bounds each probe when neither Options.Timeout nor the
// config file's timeout is set.
const DefaultTimeout = 2 * time.Second

// DefaultEndpoints returns the default endpoint list in the order it is
// tried. The current order (Kubernetes >= 1.24, cri-tools >= 1.30) is
// containerd, CRI-O, cri-dockerd; the legacy order puts dockershim first,
// then containerd and CRI-O. The slice is a fresh copy.
func DefaultEndpoints(legacy bool) []string {
	if legacy {
		return []string{
			"unix:///var/run/dockershim.sock",
			"unix:///run/containerd/containerd.sock",
			"unix:///run/crio/crio.sock",
		}
	}
	return []string{
		"unix:///run/containerd/containerd.sock",
		"unix:///run/crio/crio.sock",
		"unix:///var/run/cri-dockerd.sock",
	}
}

// Endpoint is a parsed CRI endpoint.
type Endpoint struct {
	// Scheme is "unix" or "tcp".
	Scheme string
	// Address is the absolute socket path for unix, host:port for tcp.
	Address string
}

// String returns the canonical URL form: unix:///path or tcp://host:port.
func (e Endpoint) String() string { return e.Scheme + "://" + e.Address }

// target is the gRPC dial target.
func (e Endpoint) target() string {
	if e.Scheme == "unix" {
		return "unix://" + e.Address
	}
	return "passthrough:///" + e.Address
}

// ParseEndpoint parses a CRI endpoint: unix:///abs/path, a bare absolute
// path (taken as unix), or tcp://host:port when allowTCP is set. Anything
// else is an error that says what is wrong with it.
func ParseEndpoint(raw string, allowTCP bool) (Endpoint, error) {
	ep, _, err := parseEndpoint(raw, allowTCP)
	return ep, err
}

// parseEndpoint also reports whether raw was a bare path without scheme.
func parseEndpoint(raw string, allowTCP bool) (ep Endpoint, bare bool, err error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Endpoint{}, false, errors.New("endpoint is empty")
	}
	if !strings.Contains(s, "://") {
		if filepath.IsAbs(s) {
			return Endpoint{Scheme: "unix", Address: filepath.Clean(s)}, true, nil
		}
		return Endpoint{}, false, errors.New("neither an absolute socket path nor a URL; use unix:///path/to/socket")
	}
	u, perr := url.Parse(s)
	if perr != nil {
		return Endpoint{}, false, fmt.Errorf("not a valid URL: %v", perr)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Endpoint{}, false, errors.New("query or fragment is not allowed in an endpoint")
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" {
			return Endpoint{}, false, fmt.Errorf("socket path must be absolute (unix:///path), %q was read as a host name", u.Host)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return Endpoint{}, false, errors.New("missing socket path; use unix:///path/to/socket")
		}
		return Endpoint{Scheme: "unix", Address: filepath.Clean(u.Path)}, false, nil
	case "tcp":
		if !allowTCP {
			return Endpoint{}, false, errors.New("tcp endpoints are refused (CRI over TCP is unauthenticated and unencrypted); they must be allowed explicitly")
		}
		if u.Path != "" && u.Path != "/" {
			return Endpoint{}, false, fmt.Errorf("tcp endpoint must be tcp://host:port, got path %q", u.Path)
		}
		host, port, herr := net.SplitHostPort(u.Host)
		if herr != nil || host == "" {
			return Endpoint{}, false, errors.New("tcp endpoint must be tcp://host:port")
		}
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			return Endpoint{}, false, fmt.Errorf("invalid tcp port %q", port)
		}
		return Endpoint{Scheme: "tcp", Address: u.Host}, false, nil
	case "npipe":
		return Endpoint{}, false, errors.New("npipe endpoints exist only on Windows; use unix:///path/to/socket")
	default:
		return Endpoint{}, false, fmt.Errorf("unsupported scheme %q; use unix:///path/to/socket", u.Scheme)
	}
}

// EndpointError is an endpoint value that could not be parsed, with where it
// came from.
type EndpointError struct {
	Kind   string // "runtime" or "image"
	Value  string // the value as given
	Source Source
	Origin string // human form of Source, e.g. "--runtime-endpoint" or "runtime-endpoint in /etc/crictl.yaml"
	Err    error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("invalid %s endpoint %q (from %s): %v", e.Kind, e.Value, e.Origin, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }
