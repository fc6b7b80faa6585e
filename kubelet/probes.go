package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execer runs a command in a container (the CRI ExecSync).
type execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, err error)
}

// probeTarget is what a probe runs against.
type probeTarget struct {
	containerID string
	podIP       string
	container   *v1.Container
}

// runProbe runs one probe attempt: exec exits 0, HTTP answers 200-399, or
// a TCP connection opens, within the probe's timeout.
func runProbe(ctx context.Context, ex execer, p *v1.Probe, t probeTarget) error {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		_, stderr, err := ex.ExecSync(ctx, t.containerID, p.Exec.Command, timeout)
		if err != nil {
			if msg := strings.TrimSpace(string(stderr)); msg != "" {
				return fmt.Errorf("exec %q: %w: %s", p.Exec.Command, err, msg)
			}
			return fmt.Errorf("exec %q: %w", p.Exec.Command, err)
		}
		return nil
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, t.container)
		if err != nil {
			return err
		}
		host := p.HTTPGet.Host
		if host == "" {
			host = probeHost(t.podIP)
		}
		scheme := strings.ToLower(string(p.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := p.HTTPGet.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		req.Header.Set("User-Agent", "kube-probe/kubelet-lite")
		client := &http.Client{
			// The kubelet does not verify probe certificates.
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, t.container)
		if err != nil {
			return err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = probeHost(t.podIP)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("tcp %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
		}
		conn.Close()
		return nil
	}
	return fmt.Errorf("probe has no handler")
}

// probeHost is the pod IP; a host-network pod has none from CNI, and is
// reached on the node's loopback.
func probeHost(podIP string) string {
	if podIP == "" {
		return "127.0.0.1"
	}
	return podIP
}

// probeCounter applies success and failure thresholds to probe attempts.
type probeCounter struct {
	successThreshold, failureThreshold int32
	successes, failures                int32
	// ok is the current verdict; it flips only when a threshold is met.
	ok bool
}

// observe records one attempt and reports whether the verdict changed.
func (c *probeCounter) observe(success bool) bool {
	if success {
		c.failures = 0
		c.successes++
		if !c.ok && c.successes >= max(c.successThreshold, 1) {
			c.ok = true
			return true
		}
		return false
	}
	c.successes = 0
	c.failures++
	if c.ok && c.failures >= max(c.failureThreshold, 1) {
		c.ok = false
		return true
	}
	return false
}

// probeResults is the verdict on one container.
type probeResults struct {
	started bool   // the startup probe succeeded (or there is none)
	ready   bool   // the readiness probe says ready (or there is none)
	failure string // why the container must be killed ("" while healthy)
}

// containerProbes runs one container's probes until cancelled.
type containerProbes struct {
	cancel  context.CancelFunc
	mu      sync.Mutex
	results probeResults
}

// probeManager keeps one set of probe goroutines per running container
// that has probes, and tells the pod worker when a verdict changes.
type probeManager struct {
	exec     execer
	onChange func(fullName string)
	ctx      context.Context

	mu         sync.Mutex
	containers map[string]*containerProbes // by container ID
}

func newProbeManager(ctx context.Context, ex execer, onChange func(string)) *probeManager {
	return &probeManager{exec: ex, onChange: onChange, ctx: ctx, containers: map[string]*containerProbes{}}
}

// sync starts probes for the pod's running containers and stops those of
// containers that no longer run.
func (m *probeManager) sync(ps *podSync) {
	running := map[string]bool{}
	for i := range ps.pod.Spec.Containers {
		c := &ps.pod.Spec.Containers[i]
		rc := ps.latest[c.Name]
		if rc == nil || rc.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		running[rc.id] = true
		m.ensure(ps.fullName(), probeTarget{containerID: rc.id, podIP: ps.podIP, container: c})
	}
	for _, rc := range ps.latest {
		if !running[rc.id] {
			m.forget(rc.id)
		}
	}
	for _, rc := range ps.older {
		m.forget(rc.id)
	}
}

func (m *probeManager) ensure(fullName string, t probeTarget) {
	c := t.container
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.containers[t.containerID]; ok {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	cp := &containerProbes{cancel: cancel, results: probeResults{started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}}
	m.containers[t.containerID] = cp
	changed := func() { m.onChange(fullName) }
	if c.StartupProbe != nil {
		go m.run(ctx, cp, c.StartupProbe, t, startupProbe, changed)
	}
	if c.LivenessProbe != nil {
		go m.run(ctx, cp, c.LivenessProbe, t, livenessProbe, changed)
	}
	if c.ReadinessProbe != nil {
		go m.run(ctx, cp, c.ReadinessProbe, t, readinessProbe, changed)
	}
}

// forget stops a container's probes.
func (m *probeManager) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cp, ok := m.containers[id]; ok {
		cp.cancel()
		delete(m.containers, id)
	}
}

// results is the verdict on a container (no probes: started and ready).
func (m *probeManager) results(id string) probeResults {
	m.mu.Lock()
	cp, ok := m.containers[id]
	m.mu.Unlock()
	if !ok {
		return probeResults{started: true, ready: true}
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.results
}

// failure says why a container must be killed, or "".
func (m *probeManager) failure(id string) string { return m.results(id).failure }

type probeKind int

const (
	startupProbe probeKind = iota
	livenessProbe
	readinessProbe
)

func (k probeKind) String() string {
	return [...]string{"startup", "liveness", "readiness"}[k]
}

// run probes every period after the initial delay. Liveness and readiness
// wait for the startup probe; startup stops once it succeeded; a failed
// startup or liveness verdict asks for the container to be killed.
func (m *probeManager) run(ctx context.Context, cp *containerProbes, p *v1.Probe, t probeTarget, kind probeKind, changed func()) {
	period := time.Duration(p.PeriodSeconds) * time.Second
	if period <= 0 {
		period = defaultProbePeriodSeconds * time.Second
	}
	// Liveness and startup start out "ok" and fail after failureThreshold
	// misses; readiness starts out not ready.
	counter := &probeCounter{successThreshold: p.SuccessThreshold, failureThreshold: p.FailureThreshold, ok: kind != readinessProbe}
	if kind == startupProbe {
		counter.ok = false
	}
	startupFailures := int32(0)
	delay := time.Duration(p.InitialDelaySeconds) * time.Second
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(period)
		cp.mu.Lock()
		started, failed := cp.results.started, cp.results.failure != ""
		cp.mu.Unlock()
		if failed || (kind != startupProbe && !started) {
			continue
		}
		err := runProbe(ctx, m.exec, p, t)
		if ctx.Err() != nil {
			return
		}
		cp.mu.Lock()
		notify := false
		switch kind {
		case startupProbe:
			if err == nil {
				cp.results.started = true
				notify = true
			} else if startupFailures++; startupFailures >= max(p.FailureThreshold, 1) {
				cp.results.failure = fmt.Sprintf("startup probe failed %d times: %v", startupFailures, err)
				notify = true
			}
		case livenessProbe:
			if counter.observe(err == nil) && !counter.ok {
				cp.results.failure = fmt.Sprintf("liveness probe failed %d times: %v", counter.failures, err)
				notify = true
			}
		case readinessProbe:
			if counter.observe(err == nil) {
				cp.results.ready = counter.ok
				notify = true
			}
		}
		cp.mu.Unlock()
		if notify {
			changed()
		}
		if kind == startupProbe && (err == nil || notify) {
			return
		}
	}
}
