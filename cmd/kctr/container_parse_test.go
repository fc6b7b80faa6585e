package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kctr/kctr/containers"
)

func TestLogsOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts, err := logsOptions("all", "", now)
	if err != nil || opts.Tail != -1 || !opts.Since.IsZero() {
		t.Fatalf("defaults: %+v %v", opts, err)
	}
	opts, err = logsOptions("5", "10m", now)
	if err != nil || opts.Tail != 5 || !opts.Since.Equal(now.Add(-10*time.Minute)) {
		t.Fatalf("5/10m: %+v %v", opts, err)
	}
	opts, err = logsOptions("0", "2026-01-01T00:00:00Z", now)
	if err != nil || opts.Tail != 0 || opts.Since.Year() != 2026 {
		t.Fatalf("0/rfc3339: %+v %v", opts, err)
	}
	for _, bad := range [][2]string{{"-1", ""}, {"x", ""}, {"all", "yesterday"}} {
		if _, err := logsOptions(bad[0], bad[1], now); err == nil {
			t.Errorf("logsOptions(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestPsFilters(t *testing.T) {
	f, err := parsePsFilters([]string{"name=web", "label=tier", "label=env=prod", "status=running"})
	if err != nil {
		t.Fatal(err)
	}
	match := containers.Summary{ID: "abc", Name: "web-1", State: "running", Labels: map[string]string{"tier": "x", "env": "prod"}}
	if !f.match(match) {
		t.Fatal("matching container rejected")
	}
	other := match
	other.Labels = map[string]string{"tier": "x", "env": "dev"}
	if f.match(other) {
		t.Fatal("label value not checked")
	}
	if f.wantsExited() {
		t.Fatal("status=running alone should not list exited containers")
	}
	for _, bad := range []string{"name", "name=", "color=red"} {
		if _, err := parsePsFilters([]string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}

func TestPsRowStatus(t *testing.T) {
	now := time.Now()
	exited := newPsRow(containers.Summary{ID: strings.Repeat("a", 64), State: containers.StateExited, ExitCode: 3, ExitedAt: now.Add(-2 * time.Minute), Command: "sh -c 'a very long command line'"}, false, now)
	if exited.Status != "Exited (3) 2 minutes ago" || len(exited.ID) != 12 || exited.Command != `"sh -c 'a very long c"` {
		t.Fatalf("row %+v", exited)
	}
	if k8s := containers.DisplayName(map[string]string{"io.kubernetes.pod.namespace": "kube-system", "io.kubernetes.pod.name": "etcd-node", "io.kubernetes.container.name": "etcd"}); k8s != "k8s://kube-system/etcd-node/etcd" {
		t.Fatalf("k8s name %q", k8s)
	}
}
