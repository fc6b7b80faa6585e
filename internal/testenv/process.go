package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one daemon we started. Only its own PID is ever signalled.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when cmd.Wait returned
	waitErr error         // valid after done is closed
}

// startProcess runs bin with its stdout and stderr appended to logPath.
// cmd.Wait runs in the goroutine that started it, so the child is always
// reaped and exited() never blocks.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C aimed at `go test` must not kill the
		// daemon before our cleanup had a chance to delete its tasks.
		Setpgid: true,
		// If the test binary dies without running cleanups (panic, timeout),
		// the daemon must not outlive it. SIGTERM lets it shut down cleanly.
		Pdeathsig: syscall.SIGTERM,
	}
	// Pdeathsig fires when the thread that forked the child exits, not the
	// process, and Go ends threads: one left locked by a goroutine that
	// switched network namespaces is thrown away. So the daemon is started
	// from a goroutine that keeps its thread locked until the daemon is
	// gone (Wait returns).
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	err = <-started
	// The child holds its own copy of the descriptor.
	logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how the process ended; only call after exited().
func (p *process) exitStatus() string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// stop sends SIGTERM, then SIGKILL after grace. It returns an error only
// when the process could not be made to exit.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM %s (pid %d): %w", p.name, p.pid(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL %s (pid %d): %w", p.name, p.pid(), err)
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %s and was killed", p.name, p.pid(), grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid())
	}
}

// logTail returns about the last n lines of the process log, for errors.
func (p *process) logTail(n int) string {
	return fileTail(p.logPath, n, 8192)
}

func fileTail(path string, lines, maxBytes int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > int64(maxBytes) {
		_, _ = f.Seek(st.Size()-int64(maxBytes), io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	data = bytes.TrimRight(data, "\n")
	all := strings.Split(string(data), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// ProcessesReferencing lists "PID: cmdline" of every process whose command
// line mentions path (as path itself or a file below it). A containerd shim
// names its daemon's socket in its arguments, so this finds shims that
// outlived their daemon.
func ProcessesReferencing(path string) []string {
	path = filepath.Clean(path)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		for _, a := range args {
			if a == path || strings.Contains(a, path+"/") {
				out = append(out, fmt.Sprintf("%d: %s", pid, strings.Join(args, " ")))
				break
			}
		}
	}
	return out
}

// shortTempDir makes a fresh directory whose paths stay short enough for
// unix sockets (108 bytes including the socket file name). t.TempDir()
// paths are far too long, and so may be a user's $TMPDIR.
func shortTempDir(pattern string, maxLen int) (string, error) {
	base := os.TempDir()
	if len(base)+len(pattern)+12 > maxLen {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", err
	}
	// MkdirTemp may have used a symlinked /tmp; mountinfo shows real paths.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if len(dir) > maxLen {
		os.Remove(dir)
		return "", fmt.Errorf("temp dir %s longer than %d bytes", dir, maxLen)
	}
	return dir, nil
}
