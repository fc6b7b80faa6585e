package containers

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestEffectiveCapability(t *testing.T) {
	tests := []struct {
		name   string
		status string
		want   bool
		err    bool
	}{
		{"full root", "Name:\tx\nCapEff:\t000001ffffffffff\n", true, false},
		{"no sys_resource", "CapEff:\t000001fffeffffff\n", false, false},
		{"missing line", "Name:\tx\n", false, true},
		{"garbage", "CapEff:\tzz\n", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := effectiveCapability(tt.status, capSysResource)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	if got := ClampOOMScoreAdj(-998, 0, true); got != 0 {
		t.Errorf("restricted -998 with floor 0 = %d, want 0", got)
	}
	if got := ClampOOMScoreAdj(500, 0, true); got != 500 {
		t.Errorf("restricted 500 = %d, want 500 (raising is always allowed)", got)
	}
	if got := ClampOOMScoreAdj(-998, 0, false); got != -998 {
		t.Errorf("unrestricted -998 = %d, want -998", got)
	}
}

func TestWithClampedOOMScoreAdj(t *testing.T) {
	requested := -999
	spec := &oci.Spec{Process: &specs.Process{OOMScoreAdj: &requested}}
	if err := WithClampedOOMScoreAdj(-5, true)(context.Background(), nil, nil, spec); err != nil {
		t.Fatal(err)
	}
	if *spec.Process.OOMScoreAdj != -5 {
		t.Fatalf("oom_score_adj = %d, want -5", *spec.Process.OOMScoreAdj)
	}
	empty := &oci.Spec{Process: &specs.Process{}}
	if err := WithClampedOOMScoreAdj(0, true)(context.Background(), nil, nil, empty); err != nil {
		t.Fatal(err)
	}
	if empty.Process.OOMScoreAdj != nil {
		t.Fatal("a spec without oom_score_adj must stay without one")
	}
}
