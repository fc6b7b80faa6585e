package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kctr/kctr/internal/testenv"
)

// crictlPath finds crictl v1.37: $KCTR_CRICTL, PATH, or <module>/.tools/bin.
func crictlPath() string {
	if p := os.Getenv("KCTR_CRICTL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	if root, err := testenv.ModuleRoot(); err == nil {
		if p := filepath.Join(root, ".tools", "bin", "crictl"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestCrictlE2E drives the real kcrid binary with the real crictl through
// a pod's whole life, as a user would.
func TestCrictlE2E(t *testing.T) {
	crictl := crictlPath()
	testenv.Require(t, crictl != "", "crictl not found (set KCTR_CRICTL or `go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0`)")
	p := newKcridProc(t)
	endpoint := "unix://" + p.socket
	emptyConfig := filepath.Join(p.dir, "crictl.yaml")
	writeFile(t, emptyConfig, "")
	run := func(args ...string) string {
		t.Helper()
		full := append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "30s"}, args...)
		cmd := exec.Command(crictl, full...)
		cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+emptyConfig)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		t.Logf("crictl %s (%v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return strings.TrimSpace(string(out))
	}
	logDir := filepath.Join(p.dir, "pod-logs")
	podJSON := filepath.Join(p.dir, "pod.json")
	writeFile(t, podJSON, fmt.Sprintf(`{
  "metadata": {"name": "crictl-pod", "namespace": "default", "uid": "crictl-uid", "attempt": 1},
  "hostname": "crictl-pod",
  "log_directory": %q,
  "linux": {"security_context": {"namespace_options": {"network": 2}}}
}`, logDir))
	ctrJSON := filepath.Join(p.dir, "ctr.json")
	writeFile(t, ctrJSON, `{
  "metadata": {"name": "crictl-ctr"},
  "image": {"image": "docker.io/library/busybox:1.36"},
  "command": ["sh", "-c", "echo hello-from-crictl; exec sleep 1000"],
  "log_path": "crictl-ctr/0.log"
}`)

	if v := run("version"); !strings.Contains(v, "RuntimeName:  kcrid") {
		t.Errorf("crictl version: %s", v)
	}
	pod := run("runp", podJSON)
	run("pull", "docker.io/library/busybox:1.36")
	if images := run("images"); !strings.Contains(images, "docker.io/library/busybox") {
		t.Errorf("crictl images: %s", images)
	}
	ctr := run("create", pod, ctrJSON, podJSON)
	run("start", ctr)
	if ps := run("ps", "-q"); ps != ctr {
		t.Errorf("crictl ps -q: %q, want %q", ps, ctr)
	}
	if pods := run("pods", "-q"); pods != pod {
		t.Errorf("crictl pods -q: %q, want %q", pods, pod)
	}
	var inspect struct {
		Status struct{ State string } `json:"status"`
	}
	if err := json.Unmarshal([]byte(run("inspect", ctr)), &inspect); err != nil || inspect.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("crictl inspect: %+v %v", inspect, err)
	}
	if err := json.Unmarshal([]byte(run("inspectp", pod)), &inspect); err != nil || inspect.Status.State != "SANDBOX_READY" {
		t.Errorf("crictl inspectp: %+v %v", inspect, err)
	}
	if out := run("exec", "--sync", ctr, "cat", "/etc/hostname"); out != "crictl-pod" {
		t.Errorf("crictl exec --sync: %q", out)
	}
	if logs := run("logs", ctr); logs != "hello-from-crictl" {
		t.Errorf("crictl logs: %q", logs)
	}
	// stats and statsp: a row with CPU % and memory for the container and the pod.
	if out := run("stats", "--id", ctr); !regexp.MustCompile(`(?m)^` + ctr[:13] + `\s+crictl-ctr\s+\d+\.\d\d\s+[1-9][\d.]*[kMG]?B\s`).MatchString(out) {
		t.Errorf("crictl stats:\n%s", out)
	}
	if out := run("statsp", "--id", pod); !regexp.MustCompile(`(?m)^crictl-pod\s+` + pod[:13] + `\s+\d+\.\d\d\s+[1-9][\d.]*[kMG]?B`).MatchString(out) {
		t.Errorf("crictl statsp:\n%s", out)
	}
	run("stop", "--timeout", "2", ctr)
	if err := json.Unmarshal([]byte(run("inspect", ctr)), &inspect); err != nil || inspect.Status.State != "CONTAINER_EXITED" {
		t.Errorf("crictl inspect after stop: %+v %v", inspect, err)
	}
	run("rm", ctr)
	run("stopp", pod)
	run("rmp", pod)
	if pods := run("pods", "-q"); pods != "" {
		t.Errorf("pods left: %q", pods)
	}
	run("info")
}

// TestCrictlStreaming runs the real crictl's streaming commands against
// the kcrid binary: exec -it through a pseudo-terminal, exec over
// websocket, attach, and port-forward into a pod network namespace.
func TestCrictlStreaming(t *testing.T) {
	crictl := crictlPath()
	testenv.Require(t, crictl != "", "crictl not found (set KCTR_CRICTL or `go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0`)")
	confDir := t.TempDir()
	bridge := envOr("KCRID_TEST_BRIDGE", "kcridtest0")
	writeFile(t, filepath.Join(confDir, "10-kcridtest.conflist"), fmt.Sprintf(`{
  "cniVersion": "1.0.0", "name": "kcridtest",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}
  ]}`, bridge, envOr("KCRID_TEST_SUBNET", "10.231.0.0/16"), t.TempDir()))
	t.Cleanup(func() {
		if link, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(link)
		}
		_ = testenv.PruneEmptyCNIChains()
	})
	p := newKcridProcWith(t, procOptions{cniConfDir: confDir})
	endpoint := "unix://" + p.socket
	emptyConfig := filepath.Join(p.dir, "crictl.yaml")
	writeFile(t, emptyConfig, "")
	crictlCmd := func(args ...string) *exec.Cmd {
		full := append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "30s"}, args...)
		cmd := exec.Command(crictl, full...)
		cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+emptyConfig)
		return cmd
	}
	run := func(args ...string) string {
		t.Helper()
		var stderr strings.Builder
		cmd := crictlCmd(args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	podJSON := filepath.Join(p.dir, "pod.json")
	writeFile(t, podJSON, fmt.Sprintf(`{
  "metadata": {"name": "stream-pod", "namespace": "default", "uid": "stream-uid", "attempt": 1},
  "log_directory": %q
}`, filepath.Join(p.dir, "pod-logs")))
	ctrJSON := func(name, extra string, cmd ...string) string {
		path := filepath.Join(p.dir, name+".json")
		args, _ := json.Marshal(cmd)
		writeFile(t, path, fmt.Sprintf(`{
  "metadata": {"name": %q},
  "image": {"image": "docker.io/library/busybox:1.36"},
  "command": %s,
  "log_path": "%s/0.log"%s
}`, name, args, name, extra))
		return path
	}
	pod := run("runp", podJSON)
	t.Cleanup(func() {
		_ = crictlCmd("stopp", pod).Run()
		_ = crictlCmd("rmp", "-f", pod).Run()
	})
	run("pull", "docker.io/library/busybox:1.36")
	sleeper := run("create", pod, ctrJSON("sleeper", "", "sleep", "1000"), podJSON)
	run("start", sleeper)

	t.Run("exec -it", func(t *testing.T) {
		ptmx, tty := openPTY(t)
		cmd := crictlCmd("exec", "-it", sleeper, "sh", "-c", `[ -t 0 ] && echo tty-yes; read x; echo got-$x; exit 5`)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		output := make(chan string, 1)
		go func() {
			var all []byte
			buf := make([]byte, 4096)
			for {
				n, err := ptmx.Read(buf)
				all = append(all, buf[:n]...)
				if strings.Contains(string(all), "tty-yes") && !strings.Contains(string(all), "sent") {
					_, _ = ptmx.Write([]byte("hello\r"))
					all = append(all, "sent"...)
				}
				if err != nil {
					output <- string(all)
					return
				}
			}
		}()
		err := cmd.Wait()
		got := <-output
		// crictl fails with the command's exit code in its message.
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(got, "command terminated with exit code 5") {
			t.Errorf("crictl exec -it: %v, want it to report exit code 5\n%s", err, got)
		}
		if !strings.Contains(got, "got-hello") {
			t.Errorf("crictl exec -it output lacks got-hello:\n%q", got)
		}
	})

	t.Run("exec websocket", func(t *testing.T) {
		cmd := crictlCmd("exec", "-i", "--transport", "websocket", sleeper, "sh", "-c", "tr a-z A-Z")
		cmd.Stdin = strings.NewReader("shout\n")
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != "SHOUT" {
			t.Errorf("crictl exec --transport websocket: %q, %v", out, err)
		}
	})

	t.Run("attach", func(t *testing.T) {
		echo := run("create", pod, ctrJSON("echo", `, "stdin": true`, "sh", "-c", "while read l; do echo att-$l; done"), podJSON)
		run("start", echo)
		cmd := crictlCmd("attach", "-i", echo)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout syncWriter
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "attached output", func() bool {
			if strings.Contains(stdout.String(), "att-ping") {
				return true
			}
			_, _ = io.WriteString(stdin, "ping\n")
			return false
		})
		stdin.Close() // a detach: crictl ends, the container keeps running
		if err := cmd.Wait(); err != nil {
			t.Errorf("crictl attach: %v", err)
		}
		var inspect struct {
			Status struct{ State string } `json:"status"`
		}
		if err := json.Unmarshal([]byte(run("inspect", echo)), &inspect); err != nil || inspect.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("after detach: %+v %v", inspect, err)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		server := run("create", pod, ctrJSON("server", "", "nc", "-ll", "-p", "5000", "-e", "cat"), podJSON)
		run("start", server)
		waitUntil(t, "the server to listen", func() bool {
			out, err := crictlCmd("exec", "--sync", server, "netstat", "-ltn").Output()
			return err == nil && strings.Contains(string(out), ":5000 ")
		})
		for _, transport := range []string{"spdy", "websocket"} {
			cmd := crictlCmd("port-forward", "--transport", transport, pod, "0:5000")
			var stdout syncWriter
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 5000`)
			waitUntil(t, "crictl to forward", func() bool { return forwarding.MatchString(stdout.String()) })
			local := forwarding.FindStringSubmatch(stdout.String())[1]
			conn, err := net.Dial("tcp", "127.0.0.1:"+local)
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.Repeat("through the pod "+transport+"\n", 1000)
			go func() {
				_, _ = io.WriteString(conn, msg)
				_ = conn.(*net.TCPConn).CloseWrite()
			}()
			back, err := io.ReadAll(conn)
			conn.Close()
			if err != nil || string(back) != msg {
				t.Errorf("port-forward %s: %d bytes back of %d (%v)", transport, len(back), len(msg), err)
			}
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
	})
}

// openPTY opens a pseudo-terminal pair: the master and the terminal.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}); err != nil {
		t.Fatalf("pty size: %v", err)
	}
	return ptmx, tty
}

// syncWriter collects a command's output for polling.
type syncWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitUntil polls cond; the deadline only bounds a failure.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
