package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options are the inputs of endpoint resolution. The zero value resolves
// like crictl with no flags: environment, /etc/crictl.yaml, default list.
type Options struct {
	// RuntimeEndpoint is --runtime-endpoint/-r; "" means not set.
	RuntimeEndpoint string
	// ImageEndpoint is --image-endpoint/-i; "" means not set.
	ImageEndpoint string
	// ConfigPath is --config/-c; "" means $CRI_CONFIG_FILE, then DefaultConfigPath.
	ConfigPath string
	// Timeout bounds each probe (dial and Version). 0 means the config
	// file's timeout (seconds), then DefaultTimeout.
	Timeout time.Duration
	// LegacyDefaults selects the pre-1.24 default order (dockershim first).
	// The config key legacy-default-endpoints: true does the same.
	LegacyDefaults bool
	// AllowTCP accepts tcp://host:port endpoints.
	AllowTCP bool
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Defaults replaces the default endpoint list that LegacyDefaults
	// selects (see DefaultEndpoints); nil means the built-in list. Its
	// candidates are still reported as default or default-legacy.
	Defaults []string
	// DialOptions are appended to the defaults (insecure credentials,
	// 16 MiB messages) for every connection made.
	DialOptions []grpc.DialOption

	// dial replaces grpc.NewClient; tests use it to count dials.
	dial dialFunc
}

// Connection is a resolved endpoint with its open gRPC connection.
type Connection struct {
	Endpoint string // canonical form, e.g. unix:///run/containerd/containerd.sock
	Source   Source
	Conn     *grpc.ClientConn
	// Version is the runtime's answer to the probe; nil for a separate
	// image endpoint, which is not probed by Resolve.
	Version *runtimeapi.VersionResponse
}

// Resolution is the result of Resolve. Close it when done.
type Resolution struct {
	Runtime *Connection
	// Image is the image service connection. When the image endpoint is
	// the runtime endpoint, Image.Conn is Runtime.Conn (one connection).
	Image *Connection
	// Candidates are the runtime candidates tried, in order; the last one
	// is Chosen.
	Candidates []Candidate
	// Reason says why Runtime was chosen.
	Reason string
	// Warnings are for the user (the CLI prints them to stderr).
	Warnings []string
	// Config is the loaded config file (empty if there was none).
	Config     *Config
	ConfigPath string
	// Timeout is the effective per-probe timeout; CLIs may use it for calls.
	Timeout time.Duration
}

// Close closes the runtime and image connections.
func (r *Resolution) Close() error {
	var errs []error
	if r.Runtime != nil && r.Runtime.Conn != nil {
		errs = append(errs, r.Runtime.Conn.Close())
	}
	if r.Image != nil && r.Image.Conn != nil && (r.Runtime == nil || r.Image.Conn != r.Runtime.Conn) {
		errs = append(errs, r.Image.Conn.Close())
	}
	return errors.Join(errs...)
}

// planned is one endpoint to try.
type planned struct {
	ep     Endpoint
	source Source
}

// plan is everything decided before any socket is touched.
type plan struct {
	configPath   string
	configSource Source
	configFound  bool
	config       *Config
	timeout      time.Duration
	legacy       bool
	runtime      []planned
	origin       string   // who set the runtime endpoint; "" for the default list
	image        *planned // nil: the image endpoint follows the runtime endpoint
	imageOrigin  string
	warnings     []string
}

// newPlan applies the precedence rules. On error the returned plan still
// carries what was known (config path and source) for a diagnosis.
func newPlan(o Options) (*plan, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &plan{config: &Config{}}

	// Config file: --config > $CRI_CONFIG_FILE > default.
	switch {
	case strings.TrimSpace(o.ConfigPath) != "":
		p.configPath, p.configSource = strings.TrimSpace(o.ConfigPath), SourceFlag
	case strings.TrimSpace(getenv(EnvConfigFile)) != "":
		p.configPath, p.configSource = strings.TrimSpace(getenv(EnvConfigFile)), SourceEnv
	default:
		p.configPath, p.configSource = DefaultConfigPath, SourceDefault
	}
	cfg, found, err := loadConfig(p.configPath, p.configSource != SourceDefault)
	p.configFound = found
	if err != nil {
		switch p.configSource {
		case SourceFlag:
			err = fmt.Errorf("%w (named by --config)", err)
		case SourceEnv:
			err = fmt.Errorf("%w (named by $%s)", err, EnvConfigFile)
		}
		return p, err
	}
	p.config = cfg
	for _, k := range cfg.UnknownKeys() {
		p.warnings = append(p.warnings, fmt.Sprintf("config file %s: unknown key %q ignored", p.configPath, k))
	}

	switch {
	case o.Timeout > 0:
		p.timeout = o.Timeout
	case cfg.Timeout > 0:
		p.timeout = time.Duration(cfg.Timeout) * time.Second
	default:
		p.timeout = DefaultTimeout
	}
	p.legacy = o.LegacyDefaults || cfg.LegacyDefaultEndpoints

	// Runtime endpoint: flag > env > config > default list.
	raw, src, origin := pick("runtime", o.RuntimeEndpoint, getenv(EnvRuntimeEndpoint), cfg.RuntimeEndpoint, p.configPath)
	if src != "" {
		ep, err := p.parse("runtime", raw, src, origin, o.AllowTCP)
		if err != nil {
			return p, err
		}
		p.runtime = []planned{{ep, src}}
		p.origin = origin
	} else {
		list, src := o.Defaults, SourceDefault
		if p.legacy {
			src = SourceDefaultLegacy
		}
		if list == nil {
			list = DefaultEndpoints(p.legacy)
		}
		if len(list) == 0 {
			return p, errors.New("no runtime endpoint is set and the default endpoint list is empty")
		}
		eps := make([]string, 0, len(list))
		for _, raw := range list {
			ep, err := p.parse("runtime", raw, src, "the default endpoint list", o.AllowTCP)
			if err != nil {
				return p, err
			}
			p.runtime = append(p.runtime, planned{ep, src})
			eps = append(eps, ep.String())
		}
		p.warnings = append(p.warnings, fmt.Sprintf(
			"no runtime endpoint is set, so the default endpoints are tried in order (%s); "+
				"default endpoints are deprecated: set the endpoint explicitly with --runtime-endpoint, $%s or runtime-endpoint in %s",
			strings.Join(eps, ", "), EnvRuntimeEndpoint, p.configPath))
	}

	// Image endpoint: flag > env > config > the runtime endpoint.
	raw, src, origin = pick("image", o.ImageEndpoint, getenv(EnvImageEndpoint), cfg.ImageEndpoint, p.configPath)
	if src != "" {
		ep, err := p.parse("image", raw, src, origin, o.AllowTCP)
		if err != nil {
			return p, err
		}
		p.image = &planned{ep, src}
		p.imageOrigin = origin
	}
	return p, nil
}

// pick applies flag > env > config for one endpoint kind and says where the
// value came from; src is "" when none is set.
func pick(kind, flag, env, conf, configPath string) (raw string, src Source, origin string) {
	switch {
	case strings.TrimSpace(flag) != "":
		return flag, SourceFlag, "--" + kind + "-endpoint"
	case strings.TrimSpace(env) != "":
		name := EnvRuntimeEndpoint
		if kind == "image" {
			name = EnvImageEndpoint
		}
		return env, SourceEnv, "$" + name
	case strings.TrimSpace(conf) != "":
		return conf, SourceConfig, kind + "-endpoint in " + configPath
	}
	return "", "", ""
}

func (p *plan) parse(kind, raw string, src Source, origin string, allowTCP bool) (Endpoint, error) {
	ep, bare, err := parseEndpoint(raw, allowTCP)
	if err != nil {
		return Endpoint{}, &EndpointError{Kind: kind, Value: raw, Source: src, Origin: origin, Err: err}
	}
	if bare {
		p.warnings = append(p.warnings, fmt.Sprintf("%s endpoint %q (from %s) has no scheme; using %s", kind, raw, origin, ep))
	}
	return ep, nil
}

// reason says why the first answering candidate is chosen.
func (p *plan) reason() string {
	switch {
	case p.origin != "":
		return "set by " + p.origin
	case p.legacy:
		return "first legacy (pre-1.24 order) default endpoint that answered Version"
	}
	return "first default endpoint that answered Version"
}

// Resolve picks the runtime endpoint and connects to it. An endpoint set by
// flag, environment or config file is the only candidate (no fallback) and
// is probed like the others, so a dead one fails here with a diagnosis
// rather than later with a bare gRPC error. Candidates are probed in order; missing socket files are skipped without dialing; the
// first that answers RuntimeService.Version wins and its connection is
// returned (not dialed again). The image connection shares it when the
// image endpoint is the runtime endpoint; a separate image endpoint is
// connected lazily (gRPC dials on first use) and only checked for a socket
// file, with a warning if it is missing.
//
// Invalid input (endpoint syntax, config file) returns an *EndpointError or
// a config error; when no candidate answers, a *NoEndpointError.
func Resolve(ctx context.Context, o Options) (*Resolution, error) {
	p, err := newPlan(o)
	if err != nil {
		return nil, err
	}
	pr := newProber(o, p.timeout)
	recs := make([]Candidate, 0, len(p.runtime))
	for _, c := range p.runtime {
		rec, conn, ver := pr.probeRuntime(ctx, c)
		if conn == nil {
			recs = append(recs, rec)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		rec.Chosen = true
		recs = append(recs, rec)
		res := &Resolution{
			Runtime:    &Connection{Endpoint: rec.Endpoint, Source: c.source, Conn: conn, Version: ver},
			Candidates: recs,
			Reason:     p.reason(),
			Warnings:   p.warnings,
			Config:     p.config,
			ConfigPath: p.configPath,
			Timeout:    p.timeout,
		}
		switch {
		case p.image == nil:
			res.Image = &Connection{Endpoint: rec.Endpoint, Source: SourceRuntime, Conn: conn, Version: ver}
		case p.image.ep == c.ep:
			res.Image = &Connection{Endpoint: rec.Endpoint, Source: p.image.source, Conn: conn, Version: ver}
		default:
			if _, problem := checkSocket(p.image.ep); problem != "" {
				res.Warnings = append(res.Warnings, fmt.Sprintf("image endpoint %s (from %s): %s", p.image.ep, p.imageOrigin, problem))
			}
			iconn, err := pr.dial(p.image.ep.target(), pr.dialOpts...)
			if err != nil {
				conn.Close()
				return nil, fmt.Errorf("image endpoint %s (from %s): %w", p.image.ep, p.imageOrigin, err)
			}
			res.Image = &Connection{Endpoint: p.image.ep.String(), Source: p.image.source, Conn: iconn}
		}
		return res, nil
	}
	return nil, &NoEndpointError{
		Candidates: recs,
		SetBy:      p.origin,
		ConfigPath: p.configPath,
		Warnings:   p.warnings,
		cause:      ctx.Err(),
	}
}

// Diagnose probes every runtime candidate (it does not stop at the first
// that answers; probes run concurrently, records keep the candidate order),
// and a separate image endpoint with ImageFsInfo. It opens no connection
// that outlives it. Setup errors (bad endpoint, bad config file) are
// reported in Diagnosis.Err.
func Diagnose(ctx context.Context, o Options) *Diagnosis {
	p, err := newPlan(o)
	d := &Diagnosis{
		ConfigPath:   p.configPath,
		ConfigSource: p.configSource,
		ConfigFound:  p.configFound,
		Timeout:      p.timeout,
		Warnings:     p.warnings,
		Candidates:   []Candidate{},
	}
	if err != nil {
		d.Err = err.Error()
		return d
	}
	pr := newProber(o, p.timeout)
	recs := make([]Candidate, len(p.runtime))
	var wg sync.WaitGroup
	for i, c := range p.runtime {
		wg.Go(func() {
			rec, conn, _ := pr.probeRuntime(ctx, c)
			if conn != nil {
				conn.Close()
			}
			recs[i] = rec
		})
	}
	if p.image != nil && (len(p.runtime) != 1 || p.image.ep != p.runtime[0].ep) {
		wg.Go(func() {
			rec := pr.probeImage(ctx, *p.image)
			d.Image = &rec
		})
	}
	wg.Wait()
	d.Candidates = recs
	for i := range recs {
		if recs[i].Answered {
			recs[i].Chosen = true
			d.Chosen = recs[i].Endpoint
			d.Reason = p.reason()
			break
		}
	}
	if d.Chosen == "" {
		d.Reason = "no candidate answered Version"
	}
	d.ImageEndpoint = d.Chosen
	d.ImageSource = SourceRuntime
	if p.image != nil {
		d.ImageEndpoint, d.ImageSource = p.image.ep.String(), p.image.source
	}
	return d
}
