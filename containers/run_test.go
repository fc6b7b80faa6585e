package containers_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"

	"github.com/kctr/kctr/containers"
)

func run(t *testing.T, e env, opts containers.CreateOptions) (stdout, stderr string, result *containers.RunResult) {
	t.Helper()
	var out, errOut bytes.Buffer
	result, err := e.manager.Run(e.ctx, containers.RunOptions{CreateOptions: opts, Stdout: &out, Stderr: &errOut, Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), result
}

func TestRunRemovesEverything(t *testing.T) {
	e := newEnv(t)
	stdout, stderr, result := run(t, e, containers.CreateOptions{
		Image: busyboxRef,
		Args:  []string{"sh", "-c", "echo hello from $(hostname); echo oops >&2; exit 3"},
	})
	if stdout != "hello from "+result.ID[:12]+"\n" || strings.TrimSpace(stderr) != "oops" {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	if result.ExitCode != 3 {
		t.Fatalf("exit code %d, want 3", result.ExitCode)
	}
	list, err := e.client.Containers(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("containers left after --rm: %d", len(list))
	}
	assertOnlyImageSnapshots(t, e)
}

func TestRunEnvWorkdirAndImageCmd(t *testing.T) {
	e := newEnv(t)
	stdout, _, _ := run(t, e, containers.CreateOptions{
		Image:      busyboxRef,
		Args:       []string{"sh", "-c", "echo $GREETING; pwd"},
		Env:        []string{"GREETING=hi"},
		WorkingDir: "/tmp",
	})
	if stdout != "hi\n/tmp\n" {
		t.Fatalf("stdout %q", stdout)
	}
	// Without args the image's Cmd (sh) runs and reads stdin.
	var out, errOut bytes.Buffer
	result, err := e.manager.Run(e.ctx, containers.RunOptions{
		CreateOptions: containers.CreateOptions{Image: busyboxRef},
		Stdin:         strings.NewReader("echo from-stdin; exit 9\n"),
		Stdout:        &out, Stderr: &errOut, Remove: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if result.ExitCode != 9 || out.String() != "from-stdin\n" {
		t.Fatalf("image cmd: exit %d output %q", result.ExitCode, out.String())
	}
}

// TestRunClampsOOMScoreAdj asks for a score the host may forbid; the run
// must succeed with the score clamped, not fail in runc.
func TestRunClampsOOMScoreAdj(t *testing.T) {
	e := newEnv(t)
	floor, restricted, err := containers.OOMScoreAdjFloor()
	if err != nil {
		t.Fatal(err)
	}
	requested := -500
	stdout, _, _ := run(t, e, containers.CreateOptions{
		Image:       busyboxRef,
		Args:        []string{"cat", "/proc/self/oom_score_adj"},
		OOMScoreAdj: &requested,
	})
	got, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("oom_score_adj output %q: %v", stdout, err)
	}
	want := containers.ClampOOMScoreAdj(requested, floor, restricted)
	if got != want {
		t.Fatalf("oom_score_adj in container = %d, want %d (restricted %v, floor %d)", got, want, restricted, floor)
	}
}

func TestRunErrorsLeaveNothing(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		opts  containers.CreateOptions
		check func(error) bool
	}{
		{"unknown image never pulled", containers.CreateOptions{Image: "localhost/none:1", Pull: containers.PullNever}, errdefs.IsNotFound},
		{"malformed reference", containers.CreateOptions{Image: "Not/Valid"}, errdefs.IsInvalidArgument},
		{"bad name", containers.CreateOptions{Image: busyboxRef, Name: "bad name"}, errdefs.IsInvalidArgument},
		{"missing binary", containers.CreateOptions{Image: busyboxRef, Args: []string{"/no/such/binary"}}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			_, err := e.manager.Run(e.ctx, containers.RunOptions{CreateOptions: tt.opts, Stdout: &out, Stderr: &errOut, Remove: true})
			if !tt.check(err) {
				t.Fatalf("err = %v", err)
			}
			list, err := e.client.Containers(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 0 {
				t.Fatalf("containers left: %d", len(list))
			}
			assertOnlyImageSnapshots(t, e)
		})
	}
}

func TestNameInUse(t *testing.T) {
	e := newEnv(t)
	first, err := e.manager.Create(e.ctx, containers.CreateOptions{Image: busyboxRef, Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Through the manager, which releases the network (CNI DEL) too.
		if _, err := e.manager.Remove(e.ctx, first.ID(), true); err != nil {
			t.Error(err)
		}
	})
	_, err = e.manager.Create(e.ctx, containers.CreateOptions{Image: busyboxRef, Name: "web"})
	if !errdefs.IsAlreadyExists(err) || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("second create with the same name: %v, want AlreadyExists naming it", err)
	}
}

// assertOnlyImageSnapshots fails if any active (container) snapshot is
// left; the image's committed layers may stay.
func assertOnlyImageSnapshots(t *testing.T, e env) {
	t.Helper()
	var active []string
	err := e.client.SnapshotService(e.images.Snapshotter()).Walk(e.ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			active = append(active, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) > 0 {
		t.Fatalf("container snapshots left behind: %v", active)
	}
}
