package cri_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestConcurrentPods runs many RunPodSandbox+CreateContainer+StartContainer
// at once; all must succeed with distinct IPs.
func TestConcurrentPods(t *testing.T) {
	const n = 50
	e := newEnv(t)
	e.pullBusybox()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	pods := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			podCfg := podConfig(t, fmt.Sprintf("conc-%d", i))
			pod, err := e.rs.RunPodSandbox(e.ctx, podCfg, "")
			if err != nil {
				errs <- fmt.Errorf("pod %d: %w", i, err)
				return
			}
			pods[i] = pod
			ctr, err := e.rs.CreateContainer(e.ctx, pod, containerConfig("c", "sleep", "1000"), podCfg)
			if err != nil {
				errs <- fmt.Errorf("container %d: %w", i, err)
				return
			}
			if err := e.rs.StartContainer(e.ctx, ctr); err != nil {
				errs <- fmt.Errorf("start %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pods with a running container in %v", n, time.Since(start).Round(time.Millisecond))
	ips := map[string]bool{}
	for _, pod := range pods {
		if pod == "" {
			continue
		}
		ip := podIP(t, e, pod)
		if ips[ip] {
			t.Errorf("IP %s given twice", ip)
		}
		ips[ip] = true
	}
	running, err := e.rs.ListContainers(e.ctx, &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	})
	if err != nil || len(running) != n {
		t.Errorf("%d running containers, want %d (%v)", len(running), n, err)
	}
	start = time.Now()
	e.removeAll()
	t.Logf("removed in %v", time.Since(start).Round(time.Millisecond))
}
