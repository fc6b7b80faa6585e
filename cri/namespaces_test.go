package cri_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodNamespaces(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	exec := e.execOK
	hostNS := func(kind string) string {
		l, err := os.Readlink("/proc/self/ns/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	// A pod's containers share its PID, IPC and UTS namespaces.
	podCfg := podConfig(t, "shared")
	pod := e.runPod(podCfg)
	a := e.startContainer(pod, podCfg, containerConfig("a", "sleep", "1000"))
	b := e.startContainer(pod, podCfg, containerConfig("b", "sleep", "1001"))
	if ps := exec(a, "ps", "-o", "args"); !strings.Contains(ps, "/pause") || !strings.Contains(ps, "sleep 1001") {
		t.Errorf("pod PID namespace not shared; ps in a:\n%s", ps)
	}
	for _, kind := range []string{"ipc", "uts", "net", "pid"} {
		na, nb := exec(a, "readlink", "/proc/self/ns/"+kind), exec(b, "readlink", "/proc/self/ns/"+kind)
		if na != nb || na == hostNS(kind) {
			t.Errorf("%s namespace: a %s, b %s, host %s", kind, na, nb, hostNS(kind))
		}
	}

	// A container with its own PID namespace.
	own := containerConfig("own", "sleep", "1002")
	own.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	c := e.startContainer(pod, podCfg, own)
	if pid1 := exec(c, "cat", "/proc/1/cmdline"); !strings.HasPrefix(pid1, "sleep") {
		t.Errorf("container PID namespace: pid 1 is %q", pid1)
	}

	// Host PID, IPC and network.
	hostCfg := hostNetworkPod(t, "host")
	hostCfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
	hostCfg.Linux.SecurityContext.NamespaceOptions.Ipc = runtimeapi.NamespaceMode_NODE
	hostPod := e.runPod(hostCfg)
	hc := containerConfig("h", "sleep", "1003")
	hc.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: hostCfg.Linux.SecurityContext.NamespaceOptions}
	h := e.startContainer(hostPod, hostCfg, hc)
	for _, kind := range []string{"ipc", "net", "pid", "uts"} {
		if got := exec(h, "readlink", "/proc/self/ns/"+kind); got != hostNS(kind) {
			t.Errorf("host %s namespace: %s, host has %s", kind, got, hostNS(kind))
		}
	}
	if out := exec(h, "cat", "/proc/"+fmt.Sprint(os.Getpid())+"/comm"); out == "" {
		t.Error("host PID namespace: the test process is not visible")
	}
}

func TestPortMapping(t *testing.T) {
	e := newEnv(t)
	e.pullBusybox()
	podCfg := podConfig(t, "ports")
	podCfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: 32123}}
	pod := e.runPod(podCfg)
	e.startContainer(pod, podCfg, containerConfig("web", "sh", "-c",
		"mkdir -p /tmp/www && echo port-mapped > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"))
	// The bridge's own address is local to the host, so portmap's OUTPUT
	// rules forward it to the pod.
	url := "http://10.231.0.1:32123/"
	var body string
	waitFor(t, "the mapped port to answer", func() bool {
		client := http.Client{Timeout: time.Second}
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(body) != "port-mapped" {
		t.Errorf("GET %s: %q", url, body)
	}
}
