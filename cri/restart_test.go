package cri_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"

	"github.com/kctr/kctr/network"
)

// TestRestartRecovery stops kcrid with a pod running, lets a container exit
// and another keep logging while it is down, and starts a new server on the
// same containerd and dirs. Stop writes nothing (all state is written when
// it changes), so this is what a kill -9 leaves too.
func TestRestartRecovery(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "restart")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	logger := e.startContainer(pod, podCfg, containerConfig("logger",
		"sh", "-c", "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.02; done"))
	quitter := e.startContainer(pod, podCfg, containerConfig("quitter", "sh", "-c", "sleep 1; exit 7"))
	created, err := e.rs.CreateContainer(e.ctx, pod, containerConfig("created", "true"), podCfg)
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(logger, runtimeapi.ContainerState_CONTAINER_RUNNING)
	before := podIP(t, e, pod)

	e.stop()
	down := time.Now()
	// As a crash in the middle of RunPodSandbox would leave it:
	orphan, err := network.NewNamespace(filepath.Join(e.cfg.StateDir, "netns"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // quitter exits, logger keeps writing
	e.start()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan netns %s survived the restart: %v", orphan, err)
	}

	pods, err := e.rs.ListPodSandbox(e.ctx, nil)
	if err != nil || len(pods) != 1 || pods[0].Id != pod || pods[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pods after restart: %v %v", pods, err)
	}
	if after := podIP(t, e, pod); after != before {
		t.Errorf("pod IP %q after restart, was %q", after, before)
	}
	if st := e.waitState(logger, runtimeapi.ContainerState_CONTAINER_RUNNING); st.Metadata.Name != "logger" {
		t.Errorf("logger metadata %v", st.Metadata)
	}
	st := e.waitState(quitter, runtimeapi.ContainerState_CONTAINER_EXITED)
	if st.ExitCode != 7 || st.Reason != "Error" {
		t.Errorf("quitter: exit %d reason %q, want 7 Error", st.ExitCode, st.Reason)
	}
	if finished := time.Unix(0, st.FinishedAt); finished.Before(down) || finished.After(down.Add(2*time.Second)) {
		t.Errorf("quitter finished at %v, kcrid was down from %v for 2s", finished, down)
	}
	e.waitState(created, runtimeapi.ContainerState_CONTAINER_CREATED)

	// Names stay reserved across the restart.
	if _, err := e.rs.CreateContainer(e.ctx, pod, containerConfig("logger", "true"), podCfg); !isCode(err, "AlreadyExists") {
		t.Errorf("reusing a name after restart: %v", err)
	}
	// The restarted server can still drive the old containers.
	if out, _, err := e.rs.ExecSync(e.ctx, logger, []string{"echo", "alive"}, 10*time.Second); err != nil || strings.TrimSpace(string(out)) != "alive" {
		t.Errorf("exec after restart: %q %v", out, err)
	}
	if err := e.rs.StartContainer(e.ctx, created); err != nil {
		t.Errorf("start a created container after restart: %v", err)
	}
	if err := e.rs.StopContainer(e.ctx, logger, 0); err != nil {
		t.Fatal(err)
	}
	e.waitState(logger, runtimeapi.ContainerState_CONTAINER_EXITED)

	// Every line the logger wrote, including those written while kcrid
	// was down, is in the log, in order, without a gap.
	var stdout bytes.Buffer
	path := filepath.Join(podCfg.LogDirectory, "logger/0.log")
	if err := logs.ReadLogs(context.Background(), path, logger, &logs.LogOptions{}, e.rs, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	for i, l := range lines {
		if l != fmt.Sprintf("line-%d", i) {
			t.Fatalf("log line %d is %q (gap or reorder)", i, l)
		}
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(lines[len(lines)-1], "line-"))
	if n < 60 {
		t.Errorf("only %d lines logged over more than 2s", n)
	}
	t.Logf("%d log lines, none lost while kcrid was down", len(lines))
}

func podIP(t *testing.T, e *env, pod string) string {
	t.Helper()
	st, err := e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	return st.Status.GetNetwork().GetIp()
}

func isCode(err error, code string) bool {
	return err != nil && strings.Contains(err.Error(), "code = "+code)
}

// TestStartTimeSurvivesRestart: StartContainer records the start time
// after it returned (container_start.go); a kcrid stopped right after
// still has it written, and the restarted kcrid reports the same time.
func TestStartTimeSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	podCfg := hostNetworkPod(t, "started")
	pod := e.runPod(podCfg)
	id := e.startContainer(pod, podCfg, containerConfig("app", "sleep", "1000"))
	before, err := e.rs.ContainerStatus(e.ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.start()
	after, err := e.rs.ContainerStatus(e.ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING || after.Status.StartedAt != before.Status.StartedAt {
		t.Errorf("after a restart: %s started at %d, want RUNNING started at %d", after.Status.State, after.Status.StartedAt, before.Status.StartedAt)
	}
}

// TestOrphanNetnsReleasesIP: a pod whose record never got written (kcrid
// died during RunPodSandbox) leaves a netns with an IP and a /dev/shm; the
// next kcrid runs CNI DEL for it, from its owner file, and removes both.
func TestOrphanNetnsReleasesIP(t *testing.T) {
	e := newEnv(t)
	pod := e.runPod(podConfig(t, "orphan"))
	st, err := e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	ip := st.GetStatus().GetNetwork().GetIp()
	ipFile := filepath.Join(shared.ipamDir, "kcridtest", ip)
	if _, err := os.Stat(ipFile); err != nil {
		t.Fatalf("IP %s of the pod not allocated: %v", ip, err)
	}
	e.stop()
	// What a crash before the record leaves: the netns (with its owner
	// file) and the IP, no pause container.
	client, err := daemon.Client(e.ctx, e.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctr, err := client.LoadContainer(e.ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := ctr.Task(e.ctx, nil); err == nil {
		if _, err := task.Delete(e.ctx, containerd.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	if err := ctr.Delete(e.ctx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	e.start()
	if _, err := os.Stat(ipFile); !os.IsNotExist(err) {
		t.Errorf("IP %s still allocated after recovery: %v", ip, err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "sandboxes", pod)); !os.IsNotExist(err) {
		t.Errorf("the unknown pod's state dir (its /dev/shm) after recovery: %v, want it gone", err)
	}
	for _, dir := range []string{"netns", "netns-owners"} {
		if entries, _ := os.ReadDir(filepath.Join(e.cfg.StateDir, dir)); len(entries) != 0 {
			t.Errorf("%s after recovery: %d entries, want none", dir, len(entries))
		}
	}
}
