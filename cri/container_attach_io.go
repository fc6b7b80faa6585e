package cri

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/crilog"
)

// Container stdio: who owns it.
//
// A container created without stdin and tty writes through the binary://
// log driver: the shim runs a crilog writer, which keeps logging while
// kcrid is down. Nothing of its output passes through kcrid.
//
// A container created with stdin or tty needs someone to feed its stdin
// and to hand its output to attach sessions, so kcrid owns its stdio:
// FIFOs at a path derived from the container ID (Config.containerFIFODir),
// which the shim opens for the task. containerIO reads stdout/stderr,
// writes them to the CRI log with the crilog package, and copies them to
// every attach session; it writes what attach sessions send into stdin.
//
// Across a kcrid restart: the shim keeps both ends of the output FIFOs
// open, so the container never sees EPIPE; while kcrid is down its output
// waits in the pipes (about 64 KiB each for the FIFO and the container's
// pipe), then the container blocks on write until a new kcrid reopens the
// FIFOs (recoverContainerIO) and drains them into the log. The shim also
// keeps stdin open, so the container does not see EOF either. Nothing
// about this is kept in memory only: the FIFO paths follow from the ID,
// and whether a container has them follows from its config and from the
// directory existing.

// attachQueueLen is how many output chunks an attach session may have
// waiting; a client that falls further behind is dropped rather than
// holding up the container's output and its log.
const attachQueueLen = 256

// needsContainerIO tells whether kcrid owns the container's stdio.
func needsContainerIO(cfg *runtimeapi.ContainerConfig) bool {
	return cfg.GetStdin() || cfg.GetTty()
}

// containerIO is a running container's stdio, owned by kcrid.
type containerIO struct {
	dir    string
	config cio.Config
	pipes  *cio.DirectIO
	// cancelOpen ends a stdin FIFO open still waiting for the shim.
	cancelOpen context.CancelFunc
	logFile    *crilog.File

	mu          sync.Mutex
	sessions    map[*attachSession]struct{}
	outputEnded bool
	stdinClosed bool
	stdinMu     sync.Mutex // one writer into the stdin FIFO at a time

	copying sync.WaitGroup
	// done is closed once the output FIFOs are drained (the task exited)
	// or closed (kcrid stops), the log file closed and sessions ended.
	done chan struct{}
}

// openContainerIO creates (or, after a restart, reopens) the FIFOs in dir
// and starts copying the output. logPath may be empty: output then goes
// only to attach sessions.
func openContainerIO(dir string, cfg *runtimeapi.ContainerConfig, logPath string) (_ *containerIO, retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create FIFO dir: %w", err)
	}
	config := cio.Config{Terminal: cfg.GetTty(), Stdout: filepath.Join(dir, "stdout")}
	if cfg.GetStdin() {
		config.Stdin = filepath.Join(dir, "stdin")
	}
	if !cfg.GetTty() {
		config.Stderr = filepath.Join(dir, "stderr")
	}
	c := &containerIO{
		dir:      dir,
		config:   config,
		sessions: map[*attachSession]struct{}{},
		done:     make(chan struct{}),
	}
	if logPath != "" {
		f, err := crilog.OpenFile(logPath)
		if err != nil {
			return nil, fmt.Errorf("open container log: %w", err)
		}
		c.logFile = f
		defer func() {
			if retErr != nil {
				f.Close()
			}
		}()
	}
	// The stdin FIFO's open completes when the shim opens its end; it
	// must not be tied to the caller's context.
	openCtx, cancel := context.WithCancel(context.Background())
	pipes, err := cio.NewDirectIO(openCtx, cio.NewFIFOSet(config, nil))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open FIFOs in %s: %w", dir, err)
	}
	c.pipes, c.cancelOpen = pipes, cancel
	c.copying.Add(1)
	go c.copyOutput(pipes.Stdout, "stdout")
	if pipes.Stderr != nil {
		c.copying.Add(1)
		go c.copyOutput(pipes.Stderr, "stderr")
	}
	go func() {
		c.copying.Wait()
		c.mu.Lock()
		c.outputEnded = true
		for s := range c.sessions {
			delete(c.sessions, s)
			close(s.queue)
		}
		c.mu.Unlock()
		if c.logFile != nil {
			c.logFile.Close()
		}
		close(c.done)
	}()
	return c, nil
}

// creator hands the FIFOs to a new task. The IO it returns does nothing
// on close: containerIO's life is the container's, not the Task object's.
func (c *containerIO) creator() cio.Creator {
	return func(string) (cio.IO, error) { return taskFIFOs{config: c.config}, nil }
}

type taskFIFOs struct{ config cio.Config }

func (t taskFIFOs) Config() cio.Config { return t.config }
func (taskFIFOs) Cancel()              {}
func (taskFIFOs) Wait()                {}
func (taskFIFOs) Close() error         { return nil }

// copyOutput copies one output FIFO into the log and the attach sessions
// until the shim closes it (the task exited) or kcrid closes it.
func (c *containerIO) copyOutput(r io.Reader, stream string) {
	defer c.copying.Done()
	tee := io.TeeReader(r, outputFanout{c: c, stream: stream})
	if c.logFile != nil {
		if err := c.logFile.Copy(tee, stream); err == nil {
			return
		}
	}
	// No log, or it failed: keep draining so the container never blocks.
	_, _ = io.Copy(io.Discard, tee)
}

// outputFanout queues what the container printed to every session.
type outputFanout struct {
	c      *containerIO
	stream string
}

func (f outputFanout) Write(p []byte) (int, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if len(f.c.sessions) == 0 {
		return len(p), nil
	}
	chunk := outputChunk{stream: f.stream, data: bytes.Clone(p)}
	for s := range f.c.sessions {
		select {
		case s.queue <- chunk:
		default:
			log.L.Warn("attach session too slow to keep up with the container's output; dropped")
			delete(f.c.sessions, s)
			close(s.queue)
		}
	}
	return len(p), nil
}

type outputChunk struct {
	stream string
	data   []byte
}

// attachSession is one client's view of the output.
type attachSession struct {
	queue chan outputChunk
}

// addSession registers a session; nil once the output has ended.
func (c *containerIO) addSession() *attachSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outputEnded {
		return nil
	}
	s := &attachSession{queue: make(chan outputChunk, attachQueueLen)}
	c.sessions[s] = struct{}{}
	return s
}

// removeSession stops queueing output to s; its queue is then closed.
func (c *containerIO) removeSession(s *attachSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sessions[s]; ok {
		delete(c.sessions, s)
		close(s.queue)
	}
}

// feedStdin copies a session's stdin into the container's until the
// session's stdin ends. It reports false when the container's stdin is
// closed already (stdin_once) or absent.
func (c *containerIO) feedStdin(in io.Reader) bool {
	c.mu.Lock()
	closed := c.stdinClosed || c.pipes.Stdin == nil
	c.mu.Unlock()
	if closed {
		return false
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			c.stdinMu.Lock()
			_, werr := c.pipes.Stdin.Write(buf[:n])
			c.stdinMu.Unlock()
			if werr != nil {
				return true
			}
		}
		if err != nil {
			return true
		}
	}
}

// closeStdin closes the container's stdin for good (stdin_once): kcrid's
// end of the FIFO here; the shim's end through closeShimStdin.
func (c *containerIO) closeStdin(closeShimStdin func() error) {
	c.mu.Lock()
	if c.stdinClosed || c.pipes.Stdin == nil {
		c.mu.Unlock()
		return
	}
	c.stdinClosed = true
	c.mu.Unlock()
	c.stdinMu.Lock()
	_ = c.pipes.Stdin.Close()
	c.stdinMu.Unlock()
	if err := closeShimStdin(); err != nil {
		log.L.WithError(err).Debug("close container stdin in the shim")
	}
}

// close stops copying and closes kcrid's ends of the FIFOs, leaving the
// FIFOs themselves: a running container keeps its stdio, and the next
// kcrid reopens them. It waits until the copies ended.
func (c *containerIO) close() {
	c.cancelOpen()
	c.pipes.Cancel()
	_ = c.pipes.Close()
	<-c.done
}

// remove closes and deletes the FIFOs: the container is gone.
func (c *containerIO) remove() {
	c.close()
	if err := os.RemoveAll(c.dir); err != nil {
		log.L.WithError(err).WithField("dir", c.dir).Warn("remove container FIFOs")
	}
}

// reopenLog reopens the log file after it was rotated away.
func (c *containerIO) reopenLog() error {
	if c.logFile == nil {
		return nil
	}
	return c.logFile.Reopen()
}

// startContainerIO opens the FIFOs for a container about to start, when
// kcrid owns its stdio; nil otherwise.
func (r *runtimeService) startContainerIO(c *container) (*containerIO, error) {
	if !needsContainerIO(c.config) {
		return nil, nil
	}
	cio, err := openContainerIO(r.cfg.containerFIFODir(c.meta.ID), c.config, c.meta.LogPath)
	if err != nil {
		return nil, fmt.Errorf("container %s stdio: %w", c.meta.ID, err)
	}
	return cio, nil
}

// recoverContainerIO reopens, after a restart, the FIFOs of a running
// container whose stdio kcrid owns, and drops those of one that is gone.
// A container started by a kcrid without owned stdio has no FIFO dir and
// is left to its log writer.
func (r *runtimeService) recoverContainerIO(c *container) {
	dir := r.cfg.containerFIFODir(c.meta.ID)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	c.mu.Lock()
	running := c.status.state() == runtimeapi.ContainerState_CONTAINER_RUNNING
	c.mu.Unlock()
	if !running || !needsContainerIO(c.config) {
		_ = os.RemoveAll(dir)
		return
	}
	cio, err := openContainerIO(dir, c.config, c.meta.LogPath)
	if err != nil {
		log.L.WithError(err).WithField("container", c.meta.ID).Warn("reopen container stdio; attach will not work")
		return
	}
	c.mu.Lock()
	c.io = cio
	c.mu.Unlock()
}

// removeContainerIO closes and deletes a container's FIFOs (it is being
// removed).
func (r *runtimeService) removeContainerIO(c *container) {
	c.mu.Lock()
	cio := c.io
	c.io = nil
	c.mu.Unlock()
	if cio != nil {
		cio.remove()
		return
	}
	_ = os.RemoveAll(r.cfg.containerFIFODir(c.meta.ID))
}

// closeContainerIO lets go of every container's FIFOs (kcrid stops); the
// containers keep them.
func (r *runtimeService) closeContainerIO() {
	for _, c := range r.containers.list() {
		c.mu.Lock()
		cio := c.io
		c.io = nil
		c.mu.Unlock()
		if cio != nil {
			cio.close()
		}
	}
}
