package cri_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	streamhttp "k8s.io/streaming/pkg/httpstream"

	"github.com/kctr/kctr/cri"
)

var transports = []string{"spdy", "websocket"}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds; the deadline only bounds a
// failure (streaming sessions under load can be slow to show effects).
func eventually(t *testing.T, what string, cond func() bool, details ...func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, d := range details {
				what += ": " + d()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func executor(t *testing.T, rawURL, transport string) remotecommand.Executor {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	// Tests serve TLS with a self-signed certificate.
	cfg := &restclient.Config{TLSClientConfig: restclient.TLSClientConfig{Insecure: true}}
	var ex remotecommand.Executor
	switch transport {
	case "spdy":
		ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
	case "websocket":
		ex, err = remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// execStream runs cmd through Exec and the streaming server.
func (e *env) execStream(t *testing.T, ctx context.Context, id, transport string, tty bool, opts remotecommand.StreamOptions, cmd ...string) error {
	t.Helper()
	resp, err := e.rs.Exec(e.ctx, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd, Tty: tty,
		Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil,
	})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	opts.Tty = tty
	return executor(t, resp.Url, transport).StreamWithContext(ctx, opts)
}

func exitCode(err error) int {
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitStatus()
	}
	return -1
}

// sizeQueue hands client-go the terminal sizes sent to it.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func TestStreamingExec(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "exec")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	id := e.startContainer(pod, podCfg, containerConfig("main", "sleep", "1000"))

	for _, transport := range transports {
		t.Run(transport+"/stdin", func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := e.execStream(t, e.ctx, id, transport, false, remotecommand.StreamOptions{
				Stdin: strings.NewReader("hello\nworld\n"), Stdout: &stdout, Stderr: &stderr,
			}, "sh", "-c", "cat; echo oops >&2; exit 3")
			if code := exitCode(err); code != 3 {
				t.Errorf("exit code %d (err %v), want 3", code, err)
			}
			if got := stdout.String(); got != "hello\nworld\n" {
				t.Errorf("stdout %q", got)
			}
			if got := stderr.String(); got != "oops\n" {
				t.Errorf("stderr %q", got)
			}
		})
		t.Run(transport+"/success", func(t *testing.T) {
			var stdout syncBuffer
			err := e.execStream(t, e.ctx, id, transport, false, remotecommand.StreamOptions{Stdout: &stdout}, "echo", "fine")
			if err != nil || stdout.String() != "fine\n" {
				t.Errorf("exec: %v, stdout %q", err, stdout.String())
			}
		})
		t.Run(transport+"/tty", func(t *testing.T) {
			stdinR, stdinW := io.Pipe()
			defer stdinW.Close()
			var stdout syncBuffer
			sizes := make(sizeQueue, 1)
			done := make(chan error, 1)
			go func() {
				done <- e.execStream(t, e.ctx, id, transport, true, remotecommand.StreamOptions{
					Stdin: stdinR, Stdout: &stdout, TerminalSizeQueue: sizes,
				}, "sh", "-c", `[ -t 0 ] && echo is-a-tty; until [ "$(stty size)" = "30 100" ]; do sleep 0.05; done; echo resized; read line; echo got-$line; exit 7`)
			}()
			eventually(t, "a tty", func() bool { return strings.Contains(stdout.String(), "is-a-tty") })
			sizes <- remotecommand.TerminalSize{Width: 100, Height: 30}
			eventually(t, "the resize", func() bool { return strings.Contains(stdout.String(), "resized") })
			if _, err := io.WriteString(stdinW, "abc\n"); err != nil {
				t.Fatal(err)
			}
			err := <-done
			close(sizes)
			if code := exitCode(err); code != 7 {
				t.Errorf("exit code %d (err %v), want 7", code, err)
			}
			if got := stdout.String(); !strings.Contains(got, "got-abc") {
				t.Errorf("tty output %q lacks got-abc", got)
			}
		})
	}

	t.Run("disconnect kills the process", func(t *testing.T) {
		for _, transport := range transports {
			ctx, cancel := context.WithCancel(e.ctx)
			stdinR, stdinW := io.Pipe()
			var stdout syncBuffer
			done := make(chan error, 1)
			marker := "sleep 1" + strconv.Itoa(len(transport))
			go func() {
				done <- e.execStream(t, ctx, id, transport, false, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout},
					"sh", "-c", "echo started; exec "+marker+"234")
			}()
			eventually(t, "the exec to start", func() bool { return strings.Contains(stdout.String(), "started") })
			cancel()
			<-done
			stdinW.Close()
			var last string
			eventually(t, "the exec process to be killed ("+transport+")", func() bool {
				out, _, err := e.rs.ExecSync(e.ctx, id, []string{"ps", "-o", "args"}, 10*time.Second)
				last = fmt.Sprintf("%s (%v)", out, err)
				return err == nil && !strings.Contains(string(out), marker+"234")
			}, func() string { return last })
		}
	})
	t.Run("stopping kcrid ends sessions", func(t *testing.T) {
		var stdout syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- e.execStream(t, e.ctx, id, "spdy", false, remotecommand.StreamOptions{Stdout: &stdout},
				"sh", "-c", "echo started; exec sleep 1999")
		}()
		eventually(t, "the exec to start", func() bool { return strings.Contains(stdout.String(), "started") })
		e.stop()
		<-done
		e.start()
		out, _, err := e.rs.ExecSync(e.ctx, id, []string{"ps", "-o", "args"}, 10*time.Second)
		if err != nil || strings.Contains(string(out), "sleep 1999") {
			t.Errorf("exec process after stop: %q %v", out, err)
		}
	})
	t.Run("no FIFOs left", func(t *testing.T) {
		fifoDir := filepath.Join(e.cfg.StateDir, "fifo")
		eventually(t, "exec FIFOs to be removed", func() bool {
			entries, _ := os.ReadDir(fifoDir)
			for _, entry := range entries {
				if entry.Name() != "containers" {
					return false
				}
			}
			return true
		})
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := e.rs.Exec(e.ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdout: true}); err == nil {
			t.Error("exec without a command succeeded")
		}
		if _, err := e.rs.Exec(e.ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Tty: true, Stderr: true}); err == nil {
			t.Error("exec with tty and stderr succeeded")
		}
		if _, err := e.rs.Exec(e.ctx, &runtimeapi.ExecRequest{ContainerId: "nope", Cmd: []string{"true"}, Stdout: true}); err == nil {
			t.Error("exec in an unknown container succeeded")
		}
	})
}

func TestStreamingAttach(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "attach")
	pod := e.runPod(podCfg)
	e.pullBusybox()

	cfg := containerConfig("echo", "sh", "-c", `echo boot; while read line; do echo out-$line; echo err-$line >&2; done; echo bye`)
	cfg.Stdin = true
	echo := e.startContainer(pod, podCfg, cfg)

	attach := func(t *testing.T, id, transport string, tty bool, stdin io.Reader, stdout, stderr io.Writer) <-chan error {
		t.Helper()
		resp, err := e.rs.Attach(e.ctx, &runtimeapi.AttachRequest{ContainerId: id, Tty: tty, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil})
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			done <- executor(t, resp.Url, transport).StreamWithContext(e.ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr, Tty: tty})
		}()
		return done
	}
	for _, transport := range transports {
		t.Run(transport+"/detach keeps it running", func(t *testing.T) {
			stdinR, stdinW := io.Pipe()
			var stdout, stderr syncBuffer
			done := attach(t, echo, transport, false, stdinR, &stdout, &stderr)
			line := "line-" + transport
			// Stdin may start flowing before the session is registered;
			// write until the answer comes back.
			eventually(t, "the answer", func() bool {
				if strings.Contains(stdout.String(), "out-"+line) {
					return true
				}
				_, _ = io.WriteString(stdinW, line+"\n")
				return false
			})
			eventually(t, "stderr", func() bool { return strings.Contains(stderr.String(), "err-"+line) })
			stdinW.Close()
			if err := <-done; err != nil {
				t.Errorf("attach: %v", err)
			}
			e.waitState(echo, runtimeapi.ContainerState_CONTAINER_RUNNING)
		})
	}

	t.Run("survives a restart", func(t *testing.T) {
		e.stop()
		e.start()
		stdinR, stdinW := io.Pipe()
		var stdout syncBuffer
		done := attach(t, echo, "spdy", false, stdinR, &stdout, nil)
		eventually(t, "the answer after restart", func() bool {
			if strings.Contains(stdout.String(), "out-after-restart") {
				return true
			}
			_, _ = io.WriteString(stdinW, "after-restart\n")
			return false
		})
		stdinW.Close()
		if err := <-done; err != nil {
			t.Errorf("attach: %v", err)
		}
		status := e.waitState(echo, runtimeapi.ContainerState_CONTAINER_RUNNING)
		eventually(t, "the log", func() bool {
			data, _ := os.ReadFile(status.LogPath)
			log := string(data)
			return strings.Contains(log, " stdout F boot\n") && strings.Contains(log, " stdout F out-line-spdy\n") &&
				strings.Contains(log, " stderr F err-line-websocket\n") && strings.Contains(log, " stdout F out-after-restart\n")
		})
		// kcrid writes this log itself: it must follow a rotation.
		if err := os.Rename(status.LogPath, status.LogPath+".1"); err != nil {
			t.Fatal(err)
		}
		if err := e.rs.ReopenContainerLog(e.ctx, echo); err != nil {
			t.Fatalf("ReopenContainerLog: %v", err)
		}
		stdinR, stdinW = io.Pipe()
		stdout = syncBuffer{}
		done = attach(t, echo, "websocket", false, stdinR, &stdout, nil)
		eventually(t, "the answer after rotation", func() bool {
			if strings.Contains(stdout.String(), "out-rotated") {
				return true
			}
			_, _ = io.WriteString(stdinW, "rotated\n")
			return false
		})
		stdinW.Close()
		<-done
		eventually(t, "the new log file", func() bool {
			data, _ := os.ReadFile(status.LogPath)
			return strings.Contains(string(data), " stdout F out-rotated\n") && !strings.Contains(string(data), "out-after-restart")
		})
	})

	t.Run("stdin once", func(t *testing.T) {
		cfg := containerConfig("once", "sh", "-c", "cat; echo done")
		cfg.Stdin, cfg.StdinOnce = true, true
		id := e.startContainer(pod, podCfg, cfg)
		var stdout syncBuffer
		done := attach(t, id, "websocket", false, strings.NewReader("only\n"), &stdout, nil)
		if err := <-done; err != nil {
			t.Errorf("attach: %v", err)
		}
		st := e.waitState(id, runtimeapi.ContainerState_CONTAINER_EXITED)
		if st.ExitCode != 0 || !strings.Contains(stdout.String(), "done\n") {
			t.Errorf("exit %d, stdout %q", st.ExitCode, stdout.String())
		}
	})

	t.Run("tty", func(t *testing.T) {
		cfg := containerConfig("tty", "sh")
		cfg.Stdin, cfg.Tty = true, true
		id := e.startContainer(pod, podCfg, cfg)
		stdinR, stdinW := io.Pipe()
		var stdout syncBuffer
		done := attach(t, id, "spdy", true, stdinR, &stdout, nil)
		eventually(t, "the shell to answer", func() bool {
			if strings.Contains(stdout.String(), "tty-works") {
				return true
			}
			_, _ = io.WriteString(stdinW, "echo tty-$((1+0))works | tr -d 1\n")
			return false
		})
		_, _ = io.WriteString(stdinW, "exit 4\n")
		if err := <-done; err != nil {
			t.Errorf("attach: %v", err)
		}
		if st := e.waitState(id, runtimeapi.ContainerState_CONTAINER_EXITED); st.ExitCode != 4 {
			t.Errorf("exit code %d, want 4", st.ExitCode)
		}
	})

	t.Run("log writer container", func(t *testing.T) {
		id := e.startContainer(pod, podCfg, containerConfig("ticker", "sh", "-c", `i=0; while true; do i=$((i+1)); echo tick-$i; echo tock-$i >&2; sleep 0.1; done`))
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		resp, err := e.rs.Attach(e.ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- executor(t, resp.Url, "websocket").StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
		}()
		eventually(t, "followed output", func() bool {
			return strings.Contains(stdout.String(), "tick-") && strings.Contains(stderr.String(), "tock-")
		})
		if err := e.rs.StopContainer(e.ctx, id, 0); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("attach ended with %v", err)
		}
		if _, err := e.rs.Attach(e.ctx, &runtimeapi.AttachRequest{ContainerId: echo, Stdin: true, Stdout: true}); err != nil {
			t.Errorf("attach with stdin to a stdin container: %v", err)
		}
		if _, err := e.rs.Attach(e.ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true}); err == nil {
			t.Error("attach to an exited container succeeded")
		}
	})
}

// portForwarder forwards a free local port to port in pod.
func (e *env) portForward(t *testing.T, ctx context.Context, pod string, port int, transport string) (int, <-chan error) {
	t.Helper()
	resp, err := e.rs.PortForward(e.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: pod})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	u, _ := url.Parse(resp.Url)
	cfg := &restclient.Config{}
	var dialer streamhttp.Dialer
	switch transport {
	case "spdy":
		tr, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: tr}, "POST", u)
	case "websocket":
		if dialer, err = portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg); err != nil {
			t.Fatal(err)
		}
	}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward ports: %v %v", ports, err)
	}
	return int(ports[0].Local), done
}

// echoThrough sends n pseudo-random bytes through a connection to an echo
// server and returns the sha256 of what it sent and of what came back.
func echoThrough(t *testing.T, localPort int, n int64, seed uint64) (sent, received string) {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(localPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sentSum, recvSum := sha256.New(), sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		src := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)
		_, err := io.Copy(io.MultiWriter(conn, sentSum), src)
		_ = conn.(*net.TCPConn).CloseWrite()
		writeErr <- err
	}()
	got, err := io.Copy(recvSum, conn)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("send: %v", err)
	}
	if got != n {
		t.Errorf("echo carried %d bytes, want %d", got, n)
	}
	return hex.EncodeToString(sentSum.Sum(nil)), hex.EncodeToString(recvSum.Sum(nil))
}

// startEchoServer runs a container that echoes each connection on port
// 5000 and keeps a copy of what it received in /tmp/recv.
func (e *env) startEchoServer(pod string, podCfg *runtimeapi.PodSandboxConfig, name string) string {
	id := e.startContainer(pod, podCfg, containerConfig(name, "nc", "-ll", "-p", "5000", "-e", "sh", "-c", "tee /tmp/recv"))
	eventually(e.t, "the echo server to listen", func() bool {
		out, _, err := e.rs.ExecSync(e.ctx, id, []string{"netstat", "-ltn"}, 10*time.Second)
		return err == nil && strings.Contains(string(out), ":5000 ")
	})
	return id
}

func TestStreamingPortForward(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "portforward")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	server := e.startEchoServer(pod, podCfg, "echo")
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithCancel(e.ctx)
			local, done := e.portForward(t, ctx, pod, 5000, transport)
			sent, received := echoThrough(t, local, 1<<20, 1)
			if sent != received {
				t.Errorf("echo checksum %s, sent %s", received, sent)
			}
			out, _, err := e.rs.ExecSync(e.ctx, server, []string{"sha256sum", "/tmp/recv"}, 30*time.Second)
			if err != nil || !strings.HasPrefix(string(out), sent) {
				t.Errorf("pod received %q (%v), sent %s", out, err, sent)
			}
			cancel()
			<-done
		})
	}
	t.Run("closed port", func(t *testing.T) {
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		local, _ := e.portForward(t, ctx, pod, 5999, "spdy")
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if n, err := io.Copy(io.Discard, conn); n != 0 {
			t.Errorf("read %d bytes from a closed port (%v)", n, err)
		}
	})
}

// TestStreamingLoad runs 20 exec sessions at once and a 100 MiB
// port-forward, then attach sessions one after another, checks every
// byte, and checks that the server holds no more goroutines or file
// descriptors afterwards than before.
func TestStreamingLoad(t *testing.T) {
	e := newEnv(t)
	podCfg := podConfig(t, "load")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	id := e.startContainer(pod, podCfg, containerConfig("main", "sleep", "1000"))
	server := e.startEchoServer(pod, podCfg, "echo")
	echoCfg := containerConfig("attached", "sh", "-c", "while read line; do echo out-$line; done")
	echoCfg.Stdin = true
	echo := e.startContainer(pod, podCfg, echoCfg)

	// One session of each kind first, so lazily started client and
	// server goroutines are part of the baseline.
	warm := func() {
		var out syncBuffer
		if err := e.execStream(t, e.ctx, id, "spdy", false, remotecommand.StreamOptions{Stdout: &out}, "true"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		local, done := e.portForward(t, ctx, pod, 5000, "spdy")
		echoThrough(t, local, 1024, 9)
		cancel()
		<-done
	}
	warm()
	goroutines, fds := settledCounts(0, 0)
	t.Logf("baseline: %d goroutines, %d fds", goroutines, fds)

	const sessions = 20
	const perSession = 1 << 20
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Go(func() {
			transport := transports[i%2]
			data := bytes.Repeat([]byte{byte('a' + i%26)}, perSession)
			want := sha256.Sum256(data)
			var stdout syncBuffer
			err := e.execStream(t, e.ctx, id, transport, false, remotecommand.StreamOptions{Stdin: bytes.NewReader(data), Stdout: &stdout},
				"sh", "-c", "sha256sum; exit "+strconv.Itoa(i))
			if code := exitCode(err); (i == 0 && err != nil) || (i != 0 && code != i) {
				errs <- fmt.Errorf("session %d (%s): exit code %d, err %v", i, transport, code, err)
				return
			}
			if got := strings.Fields(stdout.String()); len(got) == 0 || got[0] != hex.EncodeToString(want[:]) {
				errs <- fmt.Errorf("session %d (%s): checksum %q, want %x", i, transport, stdout.String(), want)
			}
		})
	}
	pfDone := make(chan struct{})
	var pfSent, pfReceived string
	pfStart := time.Now()
	var pfElapsed time.Duration
	go func() {
		defer close(pfDone)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		local, done := e.portForward(t, ctx, pod, 5000, "spdy")
		pfSent, pfReceived = echoThrough(t, local, 100<<20, 2)
		pfElapsed = time.Since(pfStart)
		cancel()
		<-done
	}()
	wg.Wait()
	execElapsed := time.Since(start)
	<-pfDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pfSent != pfReceived {
		t.Errorf("100 MiB echo: checksum %s, sent %s", pfReceived, pfSent)
	}
	out, _, err := e.rs.ExecSync(e.ctx, server, []string{"sha256sum", "/tmp/recv"}, 60*time.Second)
	if err != nil || !strings.HasPrefix(string(out), pfSent) {
		t.Errorf("pod received %q (%v), sent %s", out, err, pfSent)
	}
	t.Logf("%d concurrent exec sessions (1 MiB stdin each) in %v; 100 MiB echoed through port-forward (200 MiB on the wire) in %v (%.0f MiB/s each way)",
		sessions, execElapsed.Round(time.Millisecond), pfElapsed.Round(time.Millisecond), 100/pfElapsed.Seconds())

	// Attach sessions come and go too: each sends a line and detaches.
	for i := range 10 {
		transport := transports[i%2]
		resp, err := e.rs.Attach(e.ctx, &runtimeapi.AttachRequest{ContainerId: echo, Stdin: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		stdinR, stdinW := io.Pipe()
		var stdout syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- executor(t, resp.Url, transport).StreamWithContext(e.ctx, remotecommand.StreamOptions{Stdin: stdinR, Stdout: &stdout})
		}()
		line := fmt.Sprintf("attach-%d", i)
		eventually(t, "the attached echo", func() bool {
			if strings.Contains(stdout.String(), "out-"+line) {
				return true
			}
			_, _ = io.WriteString(stdinW, line+"\n")
			return false
		})
		stdinW.Close()
		if err := <-done; err != nil {
			t.Errorf("attach %d: %v", i, err)
		}
	}

	afterG, afterFD := settledCounts(goroutines, fds)
	t.Logf("after: %d goroutines, %d fds", afterG, afterFD)
	if afterG > goroutines || afterFD > fds {
		buf := make([]byte, 1<<20)
		t.Errorf("leak: goroutines %d -> %d, fds %d -> %d\n%s", goroutines, afterG, fds, afterFD, buf[:runtime.Stack(buf, true)])
	}
}

// settledCounts returns the goroutine and fd counts once they reach the
// target (or stop falling, for a baseline with target 0): connections and
// goroutines wind down asynchronously after a session ends.
func settledCounts(targetG, targetFD int) (int, int) {
	var g, fd int
	stable := 0
	for attempt := 0; attempt < 300; attempt++ {
		ng, nfd := runtime.NumGoroutine(), countFDs()
		if targetG > 0 && ng <= targetG && nfd <= targetFD {
			return ng, nfd
		}
		if ng == g && nfd == fd {
			stable++
		} else {
			stable = 0
		}
		g, fd = ng, nfd
		if targetG == 0 && stable >= 10 {
			return g, fd
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g, fd
}

func countFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

func TestStreamingTLSAndIdleTimeout(t *testing.T) {
	certFile, keyFile := selfSignedCert(t)
	e := newEnv(t, func(c *cri.Config) {
		c.Stream = cri.StreamConfig{TLSCertFile: certFile, TLSKeyFile: keyFile, IdleTimeout: time.Second}
	})
	if !strings.HasPrefix(e.server.StreamURL(), "https://127.0.0.1:") {
		t.Errorf("stream URL %s", e.server.StreamURL())
	}
	podCfg := podConfig(t, "tls")
	pod := e.runPod(podCfg)
	e.pullBusybox()
	id := e.startContainer(pod, podCfg, containerConfig("main", "sleep", "1000"))
	for i, transport := range transports {
		var stdout syncBuffer
		if err := e.execStream(t, e.ctx, id, transport, false, remotecommand.StreamOptions{Stdout: &stdout}, "echo", "secure"); err != nil || stdout.String() != "secure\n" {
			t.Errorf("%s over TLS: %v, %q", transport, err, stdout.String())
		}
		// A session that carries nothing for the idle timeout is closed,
		// and its process killed.
		stdout = syncBuffer{}
		marker := fmt.Sprintf("sleep 177%d", i)
		// (client-go's SPDY executor reports a closed connection as
		// success, its websocket executor as an error: only the session
		// ending matters here.)
		err := e.execStream(t, e.ctx, id, transport, false, remotecommand.StreamOptions{Stdout: &stdout}, "sh", "-c", "echo started; exec "+marker)
		if !strings.Contains(stdout.String(), "started") {
			t.Errorf("%s idle session ended with %v, output %q", transport, err, stdout.String())
		}
		eventually(t, "the idle exec to be killed", func() bool {
			out, _, err := e.rs.ExecSync(e.ctx, id, []string{"ps", "-o", "args"}, 10*time.Second)
			return err == nil && !strings.Contains(string(out), marker)
		})
	}
	resp, err := e.rs.PortForward(e.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: pod})
	if err != nil || !strings.HasPrefix(resp.Url, "https://") {
		t.Errorf("port-forward URL %v %v", resp, err)
	}
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key.
func selfSignedCert(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kcrid-stream-test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
