package cri_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/cri"
)

// NRI tests: an in-process kcrid with NRI on a socket in the test's temp
// dir, and containerd/nri's stub as the plugin.

// withNRI enables NRI on socket, with an empty plugin dir so nothing from
// the host is launched.
func withNRI(t *testing.T, socket string) envOption {
	dir := t.TempDir()
	return func(c *cri.Config) {
		c.NRI = cri.NRIConfig{
			Enable:          true,
			SocketPath:      socket,
			PluginDir:       filepath.Join(dir, "plugins"),
			PluginConfigDir: filepath.Join(dir, "conf.d"),
		}
	}
}

// nriRecorder is a plugin that records every event as "Event:<id>" and
// lets a test fail or adjust calls.
type nriRecorder struct {
	mu     sync.Mutex
	events []string
	synced chan struct{}
	// syncedPods and syncedContainers are the IDs of the last Synchronize.
	syncedPods, syncedContainers []string

	failRunPod, failCreate bool                            // fail the next call, once
	adjust                 func() *api.ContainerAdjustment // CreateContainer's answer
	names                  map[string]string               // container ID -> name seen in hooks
}

func (p *nriRecorder) record(event, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, event+":"+id)
}

func (p *nriRecorder) eventsFor(ids ...string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		for _, id := range ids {
			if strings.HasSuffix(e, ":"+id) {
				out = append(out, strings.TrimSuffix(e, ":"+id)+":"+id[:6])
			}
		}
	}
	return out
}

func (p *nriRecorder) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	p.syncedPods, p.syncedContainers = nil, nil
	for _, pod := range pods {
		p.syncedPods = append(p.syncedPods, pod.GetId())
	}
	for _, c := range ctrs {
		p.syncedContainers = append(p.syncedContainers, c.GetId())
	}
	p.mu.Unlock()
	close(p.synced)
	return nil, nil
}

func (p *nriRecorder) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod.GetId())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failRunPod {
		p.failRunPod = false
		return errors.New("induced RunPodSandbox failure")
	}
	return nil
}

func (p *nriRecorder) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod.GetId())
	return nil
}

func (p *nriRecorder) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod.GetId())
	return nil
}

func (p *nriRecorder) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", c.GetId())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names[c.GetId()] = c.GetName()
	if p.failCreate {
		p.failCreate = false
		return nil, nil, errors.New("induced CreateContainer failure")
	}
	if p.adjust != nil {
		return p.adjust(), nil, nil
	}
	return nil, nil, nil
}

func (p *nriRecorder) PostCreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("PostCreateContainer", c.GetId())
	return nil
}

func (p *nriRecorder) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer", c.GetId())
	return nil
}

func (p *nriRecorder) PostStartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("PostStartContainer", c.GetId())
	return nil
}

func (p *nriRecorder) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.record("UpdateContainer", c.GetId())
	return nil, nil
}

func (p *nriRecorder) PostUpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("PostUpdateContainer", c.GetId())
	return nil
}

func (p *nriRecorder) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", c.GetId())
	return nil, nil
}

func (p *nriRecorder) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer", c.GetId())
	return nil
}

// connectPlugin connects p to socket and waits for its Synchronize.
func connectPlugin(t *testing.T, socket, name string, p *nriRecorder) {
	t.Helper()
	p.synced = make(chan struct{})
	if p.names == nil {
		p.names = map[string]string{}
	}
	s, err := stub.New(p, stub.WithPluginName(name), stub.WithPluginIdx("10"), stub.WithSocketPath(socket))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-p.synced:
	case err := <-done:
		t.Fatalf("plugin %s: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("plugin %s was not synchronized", name)
	}
}

// waitEvents waits until the events for ids are want.
func waitEvents(t *testing.T, p *nriRecorder, want []string, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.eventsFor(ids...)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("NRI events:\n got %q\nwant %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func short(id string) string { return id[:6] }

// TestNRILifecycle follows a pod and a container through every hook, in
// order, once each, with the plugin's adjustment applied to the container.
func TestNRILifecycle(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nri.sock")
	e := newEnv(t, withNRI(t, socket))
	e.pullBusybox()
	plugin := &nriRecorder{adjust: func() *api.ContainerAdjustment {
		a := &api.ContainerAdjustment{}
		a.AddEnv("NRI_ADJUSTED", "yes")
		a.AddAnnotation("nri.test/adjusted", "true")
		a.AddMount(&api.Mount{Destination: "/nri-tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m"}})
		a.AddRlimit("RLIMIT_NOFILE", 1234, 1234)
		a.SetLinuxOomScoreAdj(intPtr(-999)) // below what this host allows: clamped
		return a
	}}
	connectPlugin(t, socket, "lifecycle", plugin)

	podCfg := podConfig(t, "nri-lifecycle")
	pod := e.runPod(podCfg)
	ctr := e.startContainer(pod, podCfg, containerConfig("adjusted", "sleep", "300"))
	stdout, stderr, err := e.rs.ExecSync(e.ctx, ctr, []string{"sh", "-c", "echo $NRI_ADJUSTED; grep -c ' /nri-tmp ' /proc/mounts; ulimit -n"}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(stdout)); !slices.Equal(got, []string{"yes", "1", "1234"}) {
		t.Errorf("adjusted env, mount, rlimit: got %q (stderr %q)", got, stderr)
	}
	if err := e.rs.UpdateContainerResources(e.ctx, ctr, &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512}}); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.StopContainer(e.ctx, ctr, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.rs.RemoveContainer(e.ctx, ctr); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second stop is a no-op for plugins too
		if err := e.rs.StopPodSandbox(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	p, c := short(pod), short(ctr)
	waitEvents(t, plugin, []string{
		"RunPodSandbox:" + p,
		"CreateContainer:" + c, "PostCreateContainer:" + c, "StartContainer:" + c, "PostStartContainer:" + c,
		"UpdateContainer:" + c, "PostUpdateContainer:" + c,
		"StopContainer:" + c, "RemoveContainer:" + c,
		"StopPodSandbox:" + p, "RemovePodSandbox:" + p,
	}, pod, ctr)
	if got := plugin.names[ctr]; got != "adjusted" {
		t.Errorf("container name in hooks: %q", got)
	}
}

func intPtr(v int) *int { return &v }

// TestNRIHookFailures: a failing RunPodSandbox or CreateContainer hook
// fails the RPC, leaves nothing behind, tells plugins the object is gone,
// and a retry works.
func TestNRIHookFailures(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nri.sock")
	e := newEnv(t, withNRI(t, socket))
	e.pullBusybox()
	plugin := &nriRecorder{failRunPod: true, failCreate: true}
	connectPlugin(t, socket, "failures", plugin)

	podCfg := podConfig(t, "nri-failures")
	if _, err := e.rs.RunPodSandbox(e.ctx, podCfg, ""); err == nil || !strings.Contains(err.Error(), "induced RunPodSandbox failure") {
		t.Fatalf("RunPodSandbox with a failing hook: %v", err)
	}
	if pods, err := e.rs.ListPodSandbox(e.ctx, nil); err != nil || len(pods) != 0 {
		t.Fatalf("pods after a failed RunPodSandbox: %v %v", pods, err)
	}
	pod := e.runPod(podCfg) // the name was released

	cfg := containerConfig("retried", "sleep", "300")
	if _, err := e.rs.CreateContainer(e.ctx, pod, cfg, podCfg); err == nil || !strings.Contains(err.Error(), "induced CreateContainer failure") {
		t.Fatalf("CreateContainer with a failing hook: %v", err)
	}
	if ctrs, err := e.rs.ListContainers(e.ctx, nil); err != nil || len(ctrs) != 0 {
		t.Fatalf("containers after a failed CreateContainer: %v %v", ctrs, err)
	}
	ctr := e.startContainer(pod, podCfg, cfg)

	plugin.mu.Lock()
	events := slices.Clone(plugin.events)
	plugin.mu.Unlock()
	var failedCtr string
	for _, ev := range events {
		if id, ok := strings.CutPrefix(ev, "CreateContainer:"); ok && id != ctr {
			failedCtr = id
		}
	}
	if failedCtr == "" {
		t.Fatalf("no CreateContainer for the failed creation in %q", events)
	}
	waitEvents(t, plugin, []string{"CreateContainer:" + short(failedCtr), "StopContainer:" + short(failedCtr), "RemoveContainer:" + short(failedCtr)}, failedCtr)

	var failedPodID string
	for _, ev := range events {
		if id, ok := strings.CutPrefix(ev, "RunPodSandbox:"); ok && id != pod {
			failedPodID = id
		}
	}
	if failedPodID == "" {
		t.Fatalf("no RunPodSandbox for the failed pod in %q", events)
	}
	f := short(failedPodID)
	waitEvents(t, plugin, []string{"RunPodSandbox:" + f, "StopPodSandbox:" + f, "RemovePodSandbox:" + f}, failedPodID)
}

// TestNRISynchronize: a plugin connecting late is told of existing pods
// and live containers, hears of an exit nobody asked for, and objects
// from before a kcrid restart still get their Stop and Remove.
func TestNRISynchronize(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "nri.sock")
	e := newEnv(t, withNRI(t, socket))
	e.pullBusybox()
	podCfg := podConfig(t, "nri-sync")
	pod := e.runPod(podCfg)
	running := e.startContainer(pod, podCfg, containerConfig("running", "sleep", "300"))
	exited := e.startContainer(pod, podCfg, containerConfig("exited", "true"))
	e.waitState(exited, runtimeapi.ContainerState_CONTAINER_EXITED)

	plugin := &nriRecorder{}
	connectPlugin(t, socket, "sync", plugin)
	plugin.mu.Lock()
	pods, ctrs := slices.Clone(plugin.syncedPods), slices.Clone(plugin.syncedContainers)
	plugin.mu.Unlock()
	if !slices.Equal(pods, []string{pod}) || !slices.Equal(ctrs, []string{running}) {
		t.Errorf("synchronized pods %q, containers %q; want [%s] [%s]", pods, ctrs, pod, running)
	}

	// An exit on its own reaches the plugin without any CRI call.
	oneShot := e.startContainer(pod, podCfg, containerConfig("one-shot", "sh", "-c", "exit 3"))
	o := short(oneShot)
	waitEvents(t, plugin, []string{"CreateContainer:" + o, "PostCreateContainer:" + o, "StartContainer:" + o, "PostStartContainer:" + o, "StopContainer:" + o}, oneShot)

	// After a restart, what recovery found is still followed to its end.
	e.stop()
	e.start()
	restarted := &nriRecorder{}
	connectPlugin(t, socket, "after-restart", restarted)
	if err := e.rs.RemovePodSandbox(e.ctx, pod); err != nil {
		t.Fatal(err)
	}
	r, p := short(running), short(pod)
	waitEvents(t, restarted, []string{"StopContainer:" + r, "StopPodSandbox:" + p, "RemoveContainer:" + r, "RemovePodSandbox:" + p}, running, pod)
	x := short(exited)
	waitEvents(t, restarted, []string{"RemoveContainer:" + x}, exited)
}
