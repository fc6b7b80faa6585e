package kubelet

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// fakeExec answers ExecSync from a function and counts calls.
type fakeExec struct {
	mu    sync.Mutex
	calls int
	fn    func(call int, cmd []string) error
}

func (f *fakeExec) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	return nil, nil, f.fn(call, cmd)
}

func TestRunProbeHandlers(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	c := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	target := probeTarget{containerID: "c1", podIP: host, container: c}
	ok := &fakeExec{fn: func(int, []string) error { return nil }}
	fail := &fakeExec{fn: func(int, []string) error { return errors.New("exit 1") }}

	tests := []struct {
		name   string
		ex     execer
		probe  v1.ProbeHandler
		wantOK bool
	}{
		{"exec ok", ok, v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, true},
		{"exec fails", fail, v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"false"}}}, false},
		{"http ok by port name", ok, v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}, true},
		{"http 500", ok, v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(int32(port))}}, false},
		{"tcp ok", ok, v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}, true},
		{"tcp closed", ok, v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(closedPort(t))}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runProbe(ctx, tt.ex, &v1.Probe{ProbeHandler: tt.probe, TimeoutSeconds: 2}, target)
			if (err == nil) != tt.wantOK {
				t.Errorf("runProbe: %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int32 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return int32(port)
}

func TestProbeCounterThresholds(t *testing.T) {
	c := &probeCounter{successThreshold: 2, failureThreshold: 3}
	steps := []struct {
		success     bool
		wantChanged bool
		wantOK      bool
	}{
		{true, false, false}, {true, true, true}, // two successes: ok
		{false, false, true}, {false, false, true}, {true, false, true}, // a success resets the failure count
		{false, false, true}, {false, false, true}, {false, true, false}, // three failures in a row: not ok
		{true, false, false}, {true, true, true},
	}
	for i, s := range steps {
		if changed := c.observe(s.success); changed != s.wantChanged || c.ok != s.wantOK {
			t.Fatalf("step %d: changed=%v ok=%v, want %v %v", i, changed, c.ok, s.wantChanged, s.wantOK)
		}
	}
}

func TestProbeManagerLivenessFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := &fakeExec{fn: func(call int, _ []string) error {
		if call == 1 {
			return nil
		}
		return errors.New("unhealthy")
	}}
	changed := make(chan string, 10)
	m := newProbeManager(ctx, ex, func(name string) { changed <- name })
	c := &v1.Container{Name: "main", LivenessProbe: &v1.Probe{
		ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"check"}}}, PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1}}
	m.ensure("default/p", probeTarget{containerID: "c1", container: c})
	if r := m.results("c1"); !r.ready || !r.started || r.failure != "" {
		t.Errorf("before any probe: %+v, want started, ready, healthy", r)
	}
	select {
	case name := <-changed:
		if name != "default/p" {
			t.Errorf("change reported for %q", name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("liveness failure never reported")
	}
	if why := m.failure("c1"); why == "" {
		t.Error("no failure after the liveness probe failed")
	}
	m.forget("c1")
	if r := m.results("c1"); r.failure != "" {
		t.Errorf("forgotten container still failing: %+v", r)
	}
}

func TestProbeManagerReadinessWaitsForStartup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var order []string
	ex := &fakeExec{fn: func(_ int, cmd []string) error {
		mu.Lock()
		order = append(order, cmd[0])
		mu.Unlock()
		return nil
	}}
	changed := make(chan string, 10)
	m := newProbeManager(ctx, ex, func(name string) { changed <- name })
	handler := func(cmd string) v1.ProbeHandler { return v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{cmd}}} }
	c := &v1.Container{Name: "main",
		StartupProbe:   &v1.Probe{ProbeHandler: handler("startup"), PeriodSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1},
		ReadinessProbe: &v1.Probe{ProbeHandler: handler("readiness"), PeriodSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1}}
	m.ensure("default/p", probeTarget{containerID: "c1", container: c})
	if r := m.results("c1"); r.started || r.ready {
		t.Errorf("before probes: %+v, want not started, not ready", r)
	}
	deadline := time.After(30 * time.Second)
	for r := m.results("c1"); !r.ready; r = m.results("c1") {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("never ready: %+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 2 || order[0] != "startup" {
		t.Errorf("probe order %v: readiness ran before startup succeeded", order)
	}
}
