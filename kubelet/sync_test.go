package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
)

// fakeAgent is an agent on the cri-api fakes, driven one sync at a time.
type fakeAgent struct {
	*Agent
	t      *testing.T
	rt     *critest.FakeRuntimeService
	images *critest.FakeImageService
	ctx    context.Context
}

func newFakeAgent(t *testing.T, manifests map[string]string) *fakeAgent {
	t.Helper()
	dir := t.TempDir()
	for name, content := range manifests {
		if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifests", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rt, images := critest.NewFakeRuntimeService(), critest.NewFakeImageService()
	a, err := New(Config{
		ManifestDir: filepath.Join(dir, "manifests"), RootDir: filepath.Join(dir, "root"), PodLogsDir: filepath.Join(dir, "logs"),
		NodeName: "node1", ResolvConf: filepath.Join(dir, "no-resolv.conf"),
		Backoff: Backoff{Initial: time.Hour, Max: 2 * time.Hour, Reset: 10 * time.Hour},
		Runtime: rt, Images: images,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.runtimeName = "fake"
	a.probes = newProbeManager(ctx, rt, func(string) {})
	a.checkManifests()
	return &fakeAgent{Agent: a, t: t, rt: rt, images: images, ctx: ctx}
}

// sync runs one worker pass over a pod and returns its published status.
func (f *fakeAgent) sync(name string) (v1.PodStatus, time.Duration) {
	f.t.Helper()
	retry, _ := f.syncPodByName(f.ctx, name)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statuses[name].status, retry
}

// containers returns the fake's containers of a name, oldest first.
func (f *fakeAgent) containers(name string) []*critest.FakeContainer {
	f.rt.Lock()
	defer f.rt.Unlock()
	var out []*critest.FakeContainer
	for _, c := range f.rt.Containers {
		if c.Labels[labelContainerName] == name {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *critest.FakeContainer) int { return int(a.Metadata.Attempt) - int(b.Metadata.Attempt) })
	return out
}

// exit makes a container exit with code, finished ago.
func (f *fakeAgent) exit(c *critest.FakeContainer, code int32, ago time.Duration) {
	f.rt.Lock()
	defer f.rt.Unlock()
	c.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.ExitCode = code
	c.FinishedAt = time.Now().Add(-ago).UnixNano()
}

const initPod = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: first, image: "busybox:1.36"}
  - {name: second, image: "busybox:1.36"}
  containers:
  - {name: app, image: "busybox:1.36"}
`

func TestSyncInitContainersInOrder(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"p.yaml": initPod})
	st, _ := f.sync("default/p")
	if len(f.rt.Sandboxes) != 1 || len(f.containers("first")) != 1 || len(f.containers("second")) != 0 || len(f.containers("app")) != 0 {
		t.Fatalf("after the first sync: %d sandboxes, containers %v", len(f.rt.Sandboxes), f.rt.Containers)
	}
	if st.Phase != v1.PodPending || st.PodIP != critest.FakePodSandboxIPs[0] {
		t.Errorf("status %+v", st)
	}
	for _, sb := range f.rt.Sandboxes {
		if sb.Labels[labelPodName] != "p" || sb.Labels[labelManagedBy] != managedByValue || sb.Annotations[annotationConfigSource] != "file" {
			t.Errorf("sandbox labels %v annotations %v", sb.Labels, sb.Annotations)
		}
	}
	if !slices.Contains(f.images.Called, "PullImage") {
		t.Errorf("busybox:1.36 was not pulled: %v", f.images.Called)
	}

	f.exit(f.containers("first")[0], 0, 0)
	f.sync("default/p")
	if len(f.containers("second")) != 1 || len(f.containers("app")) != 0 {
		t.Fatal("second init container did not start after the first succeeded (or app started early)")
	}
	f.exit(f.containers("second")[0], 0, 0)
	st, _ = f.sync("default/p")
	if len(f.containers("app")) != 1 || st.Phase != v1.PodRunning {
		t.Fatalf("app not started after init: phase %s", st.Phase)
	}
	// Adoption: another pass changes nothing.
	calls := len(f.rt.GetCalls())
	f.sync("default/p")
	for _, c := range f.rt.GetCalls()[calls:] {
		if c == "RunPodSandbox" || c == "CreateContainer" || c == "StopContainer" {
			t.Errorf("a sync of a healthy pod called %s", c)
		}
	}
}

const crashPod = `apiVersion: v1
kind: Pod
metadata: {name: c}
spec:
  containers:
  - {name: app, image: "busybox:1.36"}
`

func TestSyncRestartWithBackoff(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
	f.sync("default/c")
	f.exit(f.containers("app")[0], 1, 0)

	// Just crashed: wait the initial back-off (an hour here).
	st, retry := f.sync("default/c")
	if n := len(f.containers("app")); n != 1 {
		t.Fatalf("restarted during the back-off: %d instances", n)
	}
	cs := st.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || retry <= 0 || retry > time.Hour {
		t.Errorf("during back-off: state %+v, retry in %s", cs.State, retry)
	}

	// Crashed longer ago than the back-off: restart, restart count 1.
	f.exit(f.containers("app")[0], 1, 2*time.Hour)
	st, _ = f.sync("default/c")
	apps := f.containers("app")
	if len(apps) != 2 || apps[1].Annotations[annotationRestartCount] != "1" || apps[1].Annotations[annotationBackoff] != "1h0m0s" {
		t.Fatalf("after the back-off: %d instances, annotations %v", len(apps), apps[len(apps)-1].Annotations)
	}
	if cs := st.ContainerStatuses[0]; cs.RestartCount != 1 || cs.State.Running == nil || cs.LastTerminationState.Terminated == nil {
		t.Errorf("status after the restart: %+v", cs)
	}
	if want := filepath.Join(f.cfg.PodLogsDir, "default_c_"+apps[1].Labels[labelPodUID], "app"); !dirExists(want) {
		t.Errorf("log dir %s missing", want)
	}

	// The next crash doubles the wait; the oldest instance goes.
	f.exit(apps[1], 1, 3*time.Hour)
	f.sync("default/c")
	apps = f.containers("app")
	if len(apps) != 2 || apps[1].Annotations[annotationRestartCount] != "2" || apps[1].Annotations[annotationBackoff] != "2h0m0s" {
		t.Fatalf("second restart: %d instances, last annotations %v", len(apps), apps[len(apps)-1].Annotations)
	}
}

func TestSyncLivenessFailureRestarts(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
	f.cfg.Backoff.Initial = time.Nanosecond
	f.sync("default/c")
	id := f.containers("app")[0].Id
	f.probes.mu.Lock()
	f.probes.containers[id] = &containerProbes{cancel: func() {}, results: probeResults{started: true, failure: "liveness probe failed"}}
	f.probes.mu.Unlock()
	st, _ := f.sync("default/c")
	if !slices.Contains(f.rt.GetCalls(), "StopContainer") {
		t.Fatal("the unhealthy container was not stopped")
	}
	if apps := f.containers("app"); len(apps) != 2 || st.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("after a liveness failure: %d instances, status %+v", len(apps), st.ContainerStatuses[0])
	}
}

func TestSyncRestartPolicies(t *testing.T) {
	for _, tt := range []struct {
		policy      v1.RestartPolicy
		exitCode    int32
		wantPhase   v1.PodPhase
		wantRestart bool
	}{
		{v1.RestartPolicyNever, 3, v1.PodFailed, false},
		{v1.RestartPolicyNever, 0, v1.PodSucceeded, false},
		{v1.RestartPolicyOnFailure, 0, v1.PodSucceeded, false},
		{v1.RestartPolicyOnFailure, 1, v1.PodRunning, true},
		{v1.RestartPolicyAlways, 0, v1.PodRunning, true},
	} {
		t.Run(fmt.Sprintf("%s/exit%d", tt.policy, tt.exitCode), func(t *testing.T) {
			doc := crashPod + "  restartPolicy: " + string(tt.policy) + "\n"
			f := newFakeAgent(t, map[string]string{"c.yaml": doc})
			f.cfg.Backoff.Initial = time.Nanosecond
			f.sync("default/c")
			f.exit(f.containers("app")[0], tt.exitCode, time.Second)
			st, _ := f.sync("default/c")
			if restarted := len(f.containers("app")) == 2; restarted != tt.wantRestart || st.Phase != tt.wantPhase {
				t.Errorf("exit %d: restarted %v phase %s, want %v %s", tt.exitCode, restarted, st.Phase, tt.wantRestart, tt.wantPhase)
			}
			if !tt.wantRestart && !slices.Contains(f.rt.GetCalls(), "StopPodSandbox") {
				t.Error("the sandbox of a finished pod was not stopped")
			}
		})
	}
}

func TestSyncManifestRemoved(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
	f.sync("default/c")
	uid := f.containers("app")[0].Labels[labelPodUID]
	logDir := filepath.Join(f.cfg.PodLogsDir, "default_c_"+uid)
	if !dirExists(logDir) {
		t.Fatalf("log dir %s missing", logDir)
	}
	if err := os.Remove(filepath.Join(f.cfg.ManifestDir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	f.checkManifests()
	// Until it is stopped, /pods shows the pod with a deletion timestamp.
	if pods := f.PodList().Items; len(pods) != 1 || pods[0].Name != "c" || pods[0].DeletionTimestamp == nil || pods[0].DeletionGracePeriodSeconds == nil {
		t.Errorf("/pods while the pod stops: %+v, want c with a deletion timestamp and grace period", pods)
	}
	if _, gone := f.syncPodByName(f.ctx, "default/c"); !gone {
		t.Error("worker does not report the pod gone")
	}
	if pods := f.PodList().Items; len(pods) != 0 {
		t.Errorf("/pods once the pod is removed: %d pods, want none", len(pods))
	}
	if len(f.rt.Sandboxes) != 0 || len(f.rt.Containers) != 0 || dirExists(logDir) {
		t.Errorf("left behind: %d sandboxes, %d containers, log dir exists %v", len(f.rt.Sandboxes), len(f.rt.Containers), dirExists(logDir))
	}
}

func TestSyncBrokenManifestKeepsPod(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
	f.sync("default/c")
	path := filepath.Join(f.cfg.ManifestDir, "c.yaml")
	if err := os.WriteFile(path, []byte(crashPod+"  bogusField: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new mtime is not guaranteed within the same tick; the size changed.
	f.checkManifests()
	f.syncPodByName(f.ctx, "default/c")
	if len(f.rt.Sandboxes) != 1 || len(f.containers("app")) != 1 {
		t.Error("a pod whose manifest broke was removed")
	}
	list := f.PodList()
	if len(list.Items) != 1 || list.Items[0].Status.Reason != ReasonFailedToLoad {
		t.Errorf("/pods: %+v", list.Items)
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func TestSyncRecreatesDeadSandbox(t *testing.T) {
	f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
	f.sync("default/c")
	var oldID string
	for id := range f.rt.Sandboxes {
		oldID = id
	}
	// The pause container died and took the app with it.
	if err := f.rt.StopPodSandbox(f.ctx, oldID); err != nil {
		t.Fatal(err)
	}
	f.exit(f.containers("app")[0], 137, 0)
	st, _ := f.sync("default/c")
	if len(f.rt.Sandboxes) != 1 || f.rt.Sandboxes[oldID] != nil {
		t.Fatalf("sandboxes after recreation: %v", f.rt.Sandboxes)
	}
	for _, sb := range f.rt.Sandboxes {
		if sb.Metadata.Attempt != 1 {
			t.Errorf("new sandbox attempt %d, want 1", sb.Metadata.Attempt)
		}
	}
	if apps := f.containers("app"); len(apps) != 1 || st.ContainerStatuses[0].RestartCount != 1 || st.Phase != v1.PodRunning {
		t.Errorf("after recreation: %d app instances, status %+v", len(apps), st)
	}
}

func TestRelistForeign(t *testing.T) {
	for _, remove := range []bool{false, true} {
		t.Run(fmt.Sprintf("remove=%v", remove), func(t *testing.T) {
			f := newFakeAgent(t, map[string]string{"c.yaml": crashPod})
			f.cfg.RemoveForeign = remove
			f.sync("default/c")
			var ours string
			for id := range f.rt.Sandboxes {
				ours = id
			}
			foreign, err := f.rt.RunPodSandbox(f.ctx, &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "by-hand", Namespace: "default", Uid: "x"}}, "")
			if err != nil {
				t.Fatal(err)
			}
			intruder, err := f.rt.CreateContainer(f.ctx, ours, &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "intruder"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f.relist(f.ctx)
			_, foreignLeft := f.rt.Sandboxes[foreign]
			_, intruderLeft := f.rt.Containers[intruder]
			if foreignLeft == remove || intruderLeft == remove {
				t.Errorf("--remove-foreign=%v: foreign sandbox left %v, foreign container left %v", remove, foreignLeft, intruderLeft)
			}
			if _, ok := f.rt.Sandboxes[ours]; !ok || len(f.containers("app")) != 1 {
				t.Error("our pod was touched")
			}
		})
	}
}
