package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/bench/measure"
)

// runtime is one CRI endpoint, driven through k8s.io/cri-client like the
// kubelet drives it. The clients are made once; only the calls are timed.
type runtime struct {
	name     string
	rs       internalapi.RuntimeService
	is       internalapi.ImageManagerService
	busybox  string
	cgParent string
	logDir   string
	seq      int
}

// setupWorkers is how many pods or containers are made at once outside the
// timed regions (2 cores: a little overlap, not a stampede).
const setupWorkers = 4

func connect(ctx context.Context, name, endpoint, busybox, cgParent, logDir string) (*runtime, error) {
	rs, err := remote.NewRemoteRuntimeService(ctx, endpoint, 2*time.Minute, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	is, err := remote.NewRemoteImageService(ctx, endpoint, 2*time.Minute, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// containerd's CRI plugin starts serving shortly after the daemon answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := rs.Version(ctx, "")
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s never answered Version: %w", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &runtime{name: name, rs: rs, is: is, busybox: busybox, cgParent: cgParent, logDir: logDir}, nil
}

func (rt *runtime) pull(ctx context.Context, ref string) error {
	if _, err := rt.is.PullImage(ctx, &runtimeapi.ImageSpec{Image: ref}, nil, nil); err != nil {
		return fmt.Errorf("%s: pull %s: %w", rt.name, ref, err)
	}
	return nil
}

// podConfig is a kubelet-like sandbox config: the pod network (CNI) unless
// hostNet, a cgroup parent and a log directory.
func (rt *runtime) podConfig(prefix string, hostNet bool) *runtimeapi.PodSandboxConfig {
	rt.seq++
	uid := fmt.Sprintf("%s-%d", prefix, rt.seq)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: uid, Namespace: "pod-start-bench", Uid: uid},
		Hostname:     uid,
		LogDirectory: filepath.Join(rt.logDir, uid),
		Labels:       map[string]string{"bench": "pod-start"},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: rt.cgParent},
	}
	if hostNet {
		// The kubelet sets no hostname for host-network pods (runc refuses
		// one without a private UTS namespace).
		cfg.Hostname = ""
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}
	}
	return cfg
}

func (rt *runtime) containerConfig(name string, pod *runtimeapi.PodSandboxConfig) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: rt.busybox},
		Command:  []string{"sleep", "3600"},
		LogPath:  filepath.Join(name, "0.log"),
		Labels: map[string]string{
			"io.kubernetes.pod.name":      pod.Metadata.Name,
			"io.kubernetes.pod.namespace": pod.Metadata.Namespace,
		},
		// What the kubelet sends for a container with no securityContext:
		// the masked and read-only /proc and /sys paths of its default
		// proc mount (runtimes apply none when a request has none).
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		}},
	}
}

// podStart times RunPodSandbox + CreateContainer + StartContainer of one
// CNI pod with one busybox sleep; the log directories are made before, as
// the kubelet does. It returns the pod to remove.
func (rt *runtime) podStart(ctx context.Context) (phases, string, error) {
	podCfg := rt.podConfig("start", false)
	ctrCfg := rt.containerConfig("sleep", podCfg)
	if err := os.MkdirAll(filepath.Join(podCfg.LogDirectory, "sleep"), 0o755); err != nil {
		return phases{}, "", err
	}
	var ph phases
	t0 := time.Now()
	pod, err := rt.rs.RunPodSandbox(ctx, podCfg, "")
	if err != nil {
		return ph, "", fmt.Errorf("%s: RunPodSandbox: %w", rt.name, err)
	}
	t1 := time.Now()
	ctr, err := rt.rs.CreateContainer(ctx, pod, ctrCfg, podCfg)
	if err != nil {
		return ph, pod, fmt.Errorf("%s: CreateContainer: %w", rt.name, err)
	}
	t2 := time.Now()
	if err := rt.rs.StartContainer(ctx, ctr); err != nil {
		return ph, pod, fmt.Errorf("%s: StartContainer: %w", rt.name, err)
	}
	t3 := time.Now()
	return phases{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)}, pod, nil
}

// phases of one timed pod start: RunPodSandbox, CreateContainer,
// StartContainer.
type phases [3]time.Duration

func (p phases) total() time.Duration { return p[0] + p[1] + p[2] }

func (rt *runtime) removePod(ctx context.Context, pod string) error {
	if err := rt.rs.StopPodSandbox(ctx, pod); err != nil {
		return fmt.Errorf("%s: StopPodSandbox: %w", rt.name, err)
	}
	if err := rt.rs.RemovePodSandbox(ctx, pod); err != nil {
		return fmt.Errorf("%s: RemovePodSandbox: %w", rt.name, err)
	}
	return nil
}

// timePodStart warms each runtime up with one untimed pod, then times runs
// pod starts per runtime, alternating which goes first, and prints medians.
func timePodStart(ctx context.Context, rts []*runtime, runs int) ([]time.Duration, error) {
	samples := make([][]time.Duration, len(rts))
	parts := make([][3][]time.Duration, len(rts))
	for i := -1; i < runs; i++ {
		for j := range rts {
			k := j
			if i%2 == 1 {
				k = len(rts) - 1 - j
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			ph, pod, err := rts[k].podStart(ctx)
			if pod != "" {
				if e := rts[k].removePod(ctx, pod); e != nil && err == nil {
					err = e
				}
			}
			if err != nil {
				return nil, err
			}
			if i >= 0 {
				samples[k] = append(samples[k], ph.total())
				for p := range ph {
					parts[k][p] = append(parts[k][p], ph[p])
				}
			}
		}
	}
	medians := make([]time.Duration, len(rts))
	for k, rt := range rts {
		medians[k] = measure.Report("pod start "+rt.name, samples[k])
	}
	for k, rt := range rts {
		fmt.Printf("  %-32s runp %.1f + create %.1f + start %.1f ms (medians of each call)\n", rt.name,
			measure.Milliseconds(measure.Median(parts[k][0])), measure.Milliseconds(measure.Median(parts[k][1])),
			measure.Milliseconds(measure.Median(parts[k][2])))
	}
	return medians, nil
}

// timeList times ListContainers (no filter) runs times per runtime,
// alternating, after one untimed call each; every answer must hold want.
func timeList(ctx context.Context, rts []*runtime, runs, want int) ([]time.Duration, error) {
	samples := make([][]time.Duration, len(rts))
	for i := -1; i < runs; i++ {
		for j := range rts {
			k := j
			if i%2 == 1 {
				k = len(rts) - 1 - j
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t0 := time.Now()
			list, err := rts[k].rs.ListContainers(ctx, nil)
			d := time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("%s: ListContainers: %w", rts[k].name, err)
			}
			if len(list) != want {
				return nil, fmt.Errorf("%s: ListContainers returned %d, want %d", rts[k].name, len(list), want)
			}
			if i >= 0 {
				samples[k] = append(samples[k], d)
			}
		}
	}
	medians := make([]time.Duration, len(rts))
	for k, rt := range rts {
		medians[k] = measure.Report("ListContainers "+rt.name, samples[k])
	}
	return medians, nil
}

// parallel runs fn(0..n-1) on setupWorkers goroutines and returns the
// first error.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range min(setupWorkers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// createMany makes n created (not started) busybox containers in
// host-network pods of perListPod.
func (rt *runtime) createMany(ctx context.Context, n int) error {
	type slot struct {
		pod string
		cfg *runtimeapi.PodSandboxConfig
	}
	pods := make([]slot, (n+perListPod-1)/perListPod)
	for p := range pods {
		cfg := rt.podConfig("list", true)
		id, err := rt.rs.RunPodSandbox(ctx, cfg, "")
		if err != nil {
			return fmt.Errorf("%s: RunPodSandbox: %w", rt.name, err)
		}
		pods[p] = slot{id, cfg}
	}
	return parallel(ctx, n, func(i int) error {
		s := pods[i/perListPod]
		name := fmt.Sprintf("c%d", i%perListPod)
		if _, err := rt.rs.CreateContainer(ctx, s.pod, rt.containerConfig(name, s.cfg), s.cfg); err != nil {
			return fmt.Errorf("%s: CreateContainer %d: %w", rt.name, i, err)
		}
		return nil
	})
}

// runPods runs n host-network pod sandboxes.
func (rt *runtime) runPods(ctx context.Context, n int) error {
	cfgs := make([]*runtimeapi.PodSandboxConfig, n)
	for i := range cfgs {
		cfgs[i] = rt.podConfig("rss", true)
	}
	return parallel(ctx, n, func(i int) error {
		if _, err := rt.rs.RunPodSandbox(ctx, cfgs[i], ""); err != nil {
			return fmt.Errorf("%s: RunPodSandbox %d: %w", rt.name, i, err)
		}
		return nil
	})
}

// removeAll stops and removes every pod and container of the runtime.
func (rt *runtime) removeAll(ctx context.Context) error {
	var errs []error
	pods, err := rt.rs.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: ListPodSandbox: %w", rt.name, err)
	}
	errs = append(errs, parallel(ctx, len(pods), func(i int) error {
		return rt.removePod(ctx, pods[i].Id)
	}))
	ctrs, err := rt.rs.ListContainers(ctx, nil)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: ListContainers: %w", rt.name, err))...)
	}
	for _, c := range ctrs {
		if err := rt.rs.RemoveContainer(ctx, c.Id); err != nil {
			errs = append(errs, fmt.Errorf("%s: RemoveContainer: %w", rt.name, err))
		}
	}
	return errors.Join(errs...)
}
