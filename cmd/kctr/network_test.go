package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPublishedPortReachesHTTPD serves a page with busybox httpd on the
// bridge network and fetches it through the published host port.
func TestPublishedPortReachesHTTPD(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	hostPort := freeTCPPort(t)
	run := kctr(t, ns, "run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", hostPort), ref,
		"sh", "-c", "mkdir -p /www && echo hello-from-kctr > /www/index.html && exec httpd -f -p 80 -h /www")
	if run.code != 0 {
		t.Fatalf("run: %s", run.stderr)
	}
	defer kctr(t, ns, "rm", "-f", "web")

	body := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
	if strings.TrimSpace(body) != "hello-from-kctr" {
		t.Fatalf("got %q", body)
	}
	port := kctr(t, ns, "port", "web")
	if strings.TrimSpace(port.stdout) != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", hostPort) {
		t.Fatalf("port: %q %q", port.stdout, port.stderr)
	}
	inside := kctr(t, ns, "exec", "web", "sh", "-c", "ip -4 -o addr show eth0; cat /etc/hosts; hostname")
	if !strings.Contains(inside.stdout, "10.233.0.") {
		t.Fatalf("no bridge address inside:\n%s", inside.stdout)
	}
}

func TestNetworkModes(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	none := kctr(t, ns, "run", "--rm", "--net", "none", ref, "sh", "-c", "ls /sys/class/net | tr '\\n' ' '")
	if strings.TrimSpace(none.stdout) != "lo" {
		t.Fatalf("--net none interfaces: %q %q", none.stdout, none.stderr)
	}
	hostname, _ := os.Hostname()
	hostNet := kctr(t, ns, "run", "--rm", "--net", "host", ref, "hostname")
	if strings.TrimSpace(hostNet.stdout) != hostname {
		t.Fatalf("--net host hostname %q, want %q (%s)", hostNet.stdout, hostname, hostNet.stderr)
	}
	if r := kctr(t, ns, "run", "--rm", "--net", "host", "-p", "80", ref, "true"); r.code == 0 || !strings.Contains(r.stderr, "needs the bridge network") {
		t.Fatalf("-p with --net host: %d %q", r.code, r.stderr)
	}
	if r := kctr(t, ns, "run", "--rm", "-p", "80:http", ref, "true"); r.code == 0 || !strings.Contains(r.stderr, `invalid port mapping "80:http"`) {
		t.Fatalf("bad -p: %d %q", r.code, r.stderr)
	}
	if r := kctr(t, ns, "run", "--rm", "--net", "overlay", ref, "true"); r.code == 0 || !strings.Contains(r.stderr, `invalid network "overlay"`) {
		t.Fatalf("bad --net: %d %q", r.code, r.stderr)
	}
}

// TestRunRmCyclesLeakNothing runs and removes 50 bridge containers with a
// published port and checks that no network namespace, IP allocation or
// port rule is left behind.
func TestRunRmCyclesLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("50 cycles")
	}
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	if r := kctr(t, ns, "pull", "-q", ref); r.code != 0 {
		t.Fatal(r.stderr)
	}
	before := networkState(t)
	for i := 0; i < 50; i++ {
		r := kctr(t, ns, "run", "--rm", "-p", "80", ref, "true")
		if r.code != 0 {
			t.Fatalf("cycle %d: %s", i, r.stderr)
		}
	}
	after := networkState(t)
	if after != before {
		t.Fatalf("network state changed over 50 run/rm cycles:\nbefore %+v\nafter  %+v", before, after)
	}
}

type netState struct {
	netns, ipamFiles, dnatRules int
}

func networkState(t *testing.T) netState {
	t.Helper()
	var s netState
	if entries, err := os.ReadDir(filepath.Join(dataRoot, "netns")); err == nil {
		s.netns = len(entries)
	}
	if entries, err := filepath.Glob(filepath.Join("/var/lib/cni/networks", "kctr-"+testBridge, "10.*")); err == nil {
		s.ipamFiles = len(entries)
	}
	out, _ := runOutput("iptables", "-w", "-t", "nat", "-S")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "CNI-DN-") && strings.HasPrefix(line, "-A") {
			s.dnatRules++
		}
	}
	return s
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
			lastErr = fmt.Errorf("status %s", resp.Status)
		} else {
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}
