package cri_test

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	burnerFill = 48 << 20 // bytes the burner keeps in its /dev/shm (a 64 MiB tmpfs)
	layerFill  = 1 << 20  // bytes it writes into its writable layer
)

// TestStats runs a pod with a container that burns CPU and holds memory,
// and one that has exited, then checks container and pod stats, their
// filters, the streamed variants, the metrics and the errors.
func TestStats(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "stats")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	burnerCfg := containerConfig("burner", "sh", "-c",
		"head -c 1048576 /dev/zero > /layer.bin && head -c 50331648 /dev/zero > /dev/shm/fill && while :; do :; done")
	burnerCfg.Labels = map[string]string{"role": "burner"}
	burner := e.startContainer(pod, podCfg, burnerCfg)
	doneCfg := containerConfig("done", "true")
	doneCfg.Labels = map[string]string{"role": "done"}
	done := e.startContainer(pod, podCfg, doneCfg)
	e.waitState(done, runtimeapi.ContainerState_CONTAINER_EXITED)

	// The burner's working set reaches what it holds; its CPU counter
	// rises between two samples, and the second one has a rate.
	var first *runtimeapi.ContainerStats
	waitFor(t, "the burner to hold its memory", func() bool {
		s, err := e.rs.ContainerStats(e.ctx, burner)
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		first = s
		return s.GetMemory().GetWorkingSetBytes().GetValue() >= burnerFill &&
			s.GetWritableLayer().GetUsedBytes().GetValue() >= layerFill
	})
	if first.GetAttributes().GetId() != burner || first.GetAttributes().GetMetadata().GetName() != "burner" ||
		first.GetAttributes().GetLabels()["role"] != "burner" {
		t.Errorf("attributes: %+v", first.GetAttributes())
	}
	if first.GetCpu().GetTimestamp() == 0 || first.GetMemory().GetTimestamp() == 0 || first.GetMemory().GetUsageBytes().GetValue() < burnerFill {
		t.Errorf("cpu %+v memory %+v", first.GetCpu(), first.GetMemory())
	}
	if first.GetWritableLayer().GetFsId().GetMountpoint() == "" || first.GetWritableLayer().GetInodesUsed().GetValue() == 0 {
		t.Errorf("writable layer %+v", first.GetWritableLayer())
	}
	var second *runtimeapi.ContainerStats
	waitFor(t, "the burner's CPU counter to rise", func() bool {
		s, err := e.rs.ContainerStats(e.ctx, burner)
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		second = s
		return s.GetCpu().GetUsageCoreNanoSeconds().GetValue() > first.GetCpu().GetUsageCoreNanoSeconds().GetValue()
	})
	if second.GetCpu().GetUsageNanoCores() == nil || second.GetCpu().GetUsageNanoCores().GetValue() == 0 {
		t.Errorf("no CPU rate on the second sample: %+v", second.GetCpu())
	}

	// The exited container keeps its attributes and writable layer, with
	// no CPU or memory (nothing runs).
	s, err := e.rs.ContainerStats(e.ctx, done)
	if err != nil {
		t.Fatalf("ContainerStats of an exited container: %v", err)
	}
	if s.GetAttributes().GetId() != done || s.GetCpu() != nil || s.GetMemory() != nil || s.GetWritableLayer() == nil {
		t.Errorf("exited container stats: %+v", s)
	}

	// Filters, as ListContainers has them.
	ids := func(f *runtimeapi.ContainerStatsFilter) []string {
		t.Helper()
		stats, err := e.rs.ListContainerStats(e.ctx, f)
		if err != nil {
			t.Fatalf("ListContainerStats(%v): %v", f, err)
		}
		var out []string
		for _, s := range stats {
			out = append(out, s.GetAttributes().GetId())
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.ContainerStatsFilter
		want   []string
	}{
		{"none", nil, sortedIDs(burner, done)},
		{"id", &runtimeapi.ContainerStatsFilter{Id: burner}, []string{burner}},
		{"id prefix", &runtimeapi.ContainerStatsFilter{Id: done[:12]}, []string{done}},
		{"pod", &runtimeapi.ContainerStatsFilter{PodSandboxId: pod}, sortedIDs(burner, done)},
		{"other pod", &runtimeapi.ContainerStatsFilter{PodSandboxId: "0000"}, nil},
		{"labels", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"role": "done"}}, []string{done}},
		{"labels unmatched", &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"role": "none"}}, nil},
	} {
		if got := ids(tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("filter %s: got %v, want %v", tc.name, got, tc.want)
		}
	}

	// Pod stats: traffic sent to the pod from the host shows up as bytes
	// received on its eth0; CPU, memory and processes cover the burner.
	podStatus, err := e.rs.PodSandboxStatus(e.ctx, pod, false)
	if err != nil {
		t.Fatal(err)
	}
	const sent = 200 << 10
	conn, err := net.Dial("udp", net.JoinHostPort(podStatus.GetStatus().GetNetwork().GetIp(), "9"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1000)
	for n := 0; n < sent; n += len(chunk) {
		_, _ = conn.Write(chunk) // an ICMP "unreachable" may fail a later write; the bytes still went out
	}
	conn.Close()
	ps, err := e.rs.PodSandboxStats(e.ctx, pod)
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	if ps.GetAttributes().GetId() != pod || ps.GetAttributes().GetMetadata().GetName() != "stats" {
		t.Errorf("pod attributes: %+v", ps.GetAttributes())
	}
	lin := ps.GetLinux()
	if def := lin.GetNetwork().GetDefaultInterface(); def.GetName() != "eth0" || def.GetRxBytes().GetValue() < sent {
		t.Errorf("pod network after %d bytes sent: %+v", sent, lin.GetNetwork())
	}
	if lin.GetCpu().GetUsageCoreNanoSeconds().GetValue() < second.GetCpu().GetUsageCoreNanoSeconds().GetValue() ||
		lin.GetMemory().GetWorkingSetBytes().GetValue() < burnerFill {
		t.Errorf("pod cpu %+v memory %+v", lin.GetCpu(), lin.GetMemory())
	}
	if lin.GetProcess().GetProcessCount().GetValue() < 2 { // pause and the burner's shell
		t.Errorf("pod processes: %+v", lin.GetProcess())
	}
	if len(lin.GetContainers()) != 2 {
		t.Errorf("pod stats list %d containers, want 2", len(lin.GetContainers()))
	}
	list, err := e.rs.ListPodSandboxStats(e.ctx, &runtimeapi.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "stats"}})
	if err != nil || len(list) != 1 || list[0].GetAttributes().GetId() != pod {
		t.Errorf("ListPodSandboxStats by label: %v %v", list, err)
	}
	if list, err := e.rs.ListPodSandboxStats(e.ctx, &runtimeapi.PodSandboxStatsFilter{Id: "0000"}); err != nil || len(list) != 0 {
		t.Errorf("ListPodSandboxStats of another ID: %v %v", list, err)
	}

	// The streamed variants return what the lists return.
	client := rawClient(t, e)
	cs, err := client.StreamContainerStats(e.ctx, &runtimeapi.StreamContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: pod}})
	if err != nil {
		t.Fatal(err)
	}
	if n := countStreamed(t, cs.Recv, func(r *runtimeapi.StreamContainerStatsResponse) int { return len(r.GetContainerStats()) }); n != 2 {
		t.Errorf("StreamContainerStats sent %d stats, want 2", n)
	}
	pss, err := client.StreamPodSandboxStats(e.ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countStreamed(t, pss.Recv, func(r *runtimeapi.StreamPodSandboxStatsResponse) int { return len(r.GetPodSandboxStats()) }); n != 1 {
		t.Errorf("StreamPodSandboxStats sent %d stats, want 1", n)
	}

	t.Run("metrics", func(t *testing.T) { checkMetrics(t, e, pod, burner, sent) })
	t.Run("no leak under load", func(t *testing.T) { checkNoLeakUnderLoad(t, e) })

	// Unknown IDs are NotFound.
	if _, err := e.rs.ContainerStats(e.ctx, "0000"); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStats of an unknown ID: %v", err)
	}
	if _, err := e.rs.PodSandboxStats(e.ctx, "0000"); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats of an unknown ID: %v", err)
	}
}

// checkMetrics: every family described has help and label keys, every
// metric has as many label values as its family has keys, and the pod's
// metrics show the burner's memory and the traffic.
func checkMetrics(t *testing.T, e *env, pod, burner string, sent uint64) {
	descs, err := e.rs.ListMetricDescriptors(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range descs {
		if d.GetHelp() == "" || len(d.GetLabelKeys()) == 0 {
			t.Errorf("descriptor %+v lacks help or label keys", d)
		}
		keys[d.GetName()] = len(d.GetLabelKeys())
	}
	all, err := e.rs.ListPodSandboxMetrics(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pm *runtimeapi.PodSandboxMetrics
	for _, m := range all {
		if m.GetPodSandboxId() == pod {
			pm = m
		}
	}
	if pm == nil {
		t.Fatalf("no metrics for pod %s", pod)
	}
	found := map[string]uint64{}
	check := func(ms []*runtimeapi.Metric, owner string) {
		for _, m := range ms {
			n, ok := keys[m.GetName()]
			if !ok || len(m.GetLabelValues()) != n {
				t.Errorf("metric %s has %d label values, its descriptor %d keys (described: %v)", m.GetName(), len(m.GetLabelValues()), n, ok)
			}
			if owner == burner || owner == pod {
				found[m.GetName()+"/"+m.GetLabelValues()[len(m.GetLabelValues())-1]] = m.GetValue().GetValue()
				found[m.GetName()] = m.GetValue().GetValue()
			}
		}
	}
	check(pm.GetMetrics(), pod)
	var sawBurner bool
	for _, cm := range pm.GetContainerMetrics() {
		check(cm.GetMetrics(), cm.GetContainerId())
		sawBurner = sawBurner || cm.GetContainerId() == burner
	}
	if !sawBurner || len(pm.GetContainerMetrics()) != 1 {
		t.Errorf("container metrics for %d containers (burner among them: %v), want the running burner only", len(pm.GetContainerMetrics()), sawBurner)
	}
	if v := found["container_network_receive_bytes_total/eth0"]; v < sent {
		t.Errorf("container_network_receive_bytes_total{interface=eth0} = %d, want >= %d", v, sent)
	}
	if v := found["container_memory_working_set_bytes"]; v < burnerFill {
		t.Errorf("container_memory_working_set_bytes = %d, want >= %d", v, burnerFill)
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_processes", "container_threads",
		"container_file_descriptors", "container_fs_usage_bytes", "container_start_time_seconds"} {
		if _, ok := found[name]; !ok {
			t.Errorf("the burner has no %s", name)
		}
	}
}

// checkNoLeakUnderLoad runs stats and metrics calls concurrently (each
// pod stats call opens the pod's netns and a netlink socket) and checks
// that the process's descriptors and goroutines come back to where they
// were.
func checkNoLeakUnderLoad(t *testing.T, e *env) {
	fdsBefore, goroutinesBefore := openFDs(t), runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := e.rs.ListPodSandboxStats(e.ctx, nil); err != nil {
				t.Errorf("ListPodSandboxStats: %v", err)
			}
			if _, err := e.rs.ListPodSandboxMetrics(e.ctx); err != nil {
				t.Errorf("ListPodSandboxMetrics: %v", err)
			}
			if _, err := e.rs.ListContainerStats(e.ctx, nil); err != nil {
				t.Errorf("ListContainerStats: %v", err)
			}
		})
	}
	wg.Wait()
	waitFor(t, "descriptors and goroutines to come back", func() bool {
		return openFDs(t) <= fdsBefore && runtime.NumGoroutine() <= goroutinesBefore
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func rawClient(t *testing.T, e *env) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+e.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// countStreamed reads a server stream to its end and counts the items.
func countStreamed[T any](t *testing.T, recv func() (T, error), items func(T) int) int {
	t.Helper()
	n := 0
	for {
		msg, err := recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		n += items(msg)
	}
}

func sortedIDs(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }
