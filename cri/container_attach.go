package cri

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// attachLogPoll is how often an attach to a log-writer container looks
// for new lines in the log file.
const attachLogPoll = 100 * time.Millisecond

// attachStream attaches a session to a running container.
//
// For a container whose stdio kcrid owns (created with stdin or tty, see
// container_attach_io.go) the session gets the output from now on, and its
// stdin goes to the container's. When the session's stdin ends: with
// stdin_once (and no tty) the container's stdin is closed and the session
// lasts until the output ends; otherwise the session ends and the
// container keeps running (a detach). The session also ends when the
// container's output ends (it exited) or the client goes away.
//
// A container without stdin and tty writes through its log writer, not
// kcrid: attach then follows the log file from its current end, writing
// each line's message to the stream it came from, until the container
// exits. (containerd's CRI, which owns every container's stdio, streams
// such output directly; the bytes are the same, line by line.)
func (r *runtimeService) attachStream(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.runningContainer(id, "attach to")
	if err != nil {
		return err
	}
	c.mu.Lock()
	cio := c.io
	c.mu.Unlock()
	if cio == nil {
		if stdin != nil {
			return fmt.Errorf("attach to container %s with stdin: it was not created with stdin: %w", c.meta.ID, errdefs.ErrFailedPrecondition)
		}
		return r.followLog(ctx, c, stdout, stderr)
	}
	session := cio.addSession()
	if session == nil {
		return nil // the output ended already: the container is exiting
	}
	defer cio.removeSession(session)
	bg := context.WithoutCancel(ctx)
	// The container's terminal, not the request's, decides what stdin's
	// end means and whether there is a terminal to resize.
	tty = c.config.GetTty()

	done := make(chan struct{})
	defer close(done)
	if tty && resize != nil {
		if _, task, err := r.loadTask(ctx, c.meta.ID); err == nil && task != nil {
			go forwardResizes(bg, task, resize, done)
		}
	}
	written := make(chan error, 1)
	go func() { written <- pumpOutput(session, stdout, stderr) }()

	stdinEnded := make(chan struct{})
	if stdin != nil {
		go func() {
			defer close(stdinEnded)
			cio.feedStdin(stdin)
		}()
	}
	select {
	case err := <-written:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-stdinEnded:
	}
	if c.config.GetStdinOnce() && !tty {
		cio.closeStdin(func() error {
			_, task, err := r.loadTask(bg, c.meta.ID)
			if err != nil || task == nil {
				return err
			}
			return task.CloseIO(bg, containerd.WithStdinCloser)
		})
		select {
		case err := <-written:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Detach: flush what is queued for this session, then end it.
	cio.removeSession(session)
	return <-written
}

// pumpOutput writes a session's queued output to its client until the
// queue closes; a failed write (the client went away) ends it early.
func pumpOutput(s *attachSession, stdout, stderr io.Writer) error {
	var failed error
	for chunk := range s.queue {
		if failed != nil {
			continue
		}
		w := stdout
		if chunk.stream == "stderr" {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(chunk.data); err != nil {
			failed = err
		}
	}
	return failed
}

// followLog streams the messages of new lines in c's CRI log file until c
// exits or ctx ends. A rotated file is followed to its end, then the new
// one from its start.
func (r *runtimeService) followLog(ctx context.Context, c *container, stdout, stderr io.Writer) error {
	if c.meta.LogPath == "" {
		return fmt.Errorf("attach to container %s: it has neither stdin, tty nor a log file to follow: %w", c.meta.ID, errdefs.ErrFailedPrecondition)
	}
	f, err := os.Open(c.meta.LogPath)
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", c.meta.ID, err)
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("attach to container %s: %w", c.meta.ID, err)
	}
	reader := bufio.NewReader(f)
	var pending []byte
	// drain writes every complete line there is; false on a write error.
	drain := func() error {
		for {
			b, err := reader.ReadBytes('\n')
			pending = append(pending, b...)
			if err != nil {
				return nil
			}
			line := pending
			pending = nil
			if werr := writeLogLine(line, stdout, stderr); werr != nil {
				return werr
			}
		}
	}
	ticker := time.NewTicker(attachLogPoll)
	defer ticker.Stop()
	for {
		if err := drain(); err != nil {
			return err
		}
		select {
		case <-c.exited:
			// The writer has flushed by the time the task is deleted.
			return drain()
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		if rotated(f, c.meta.LogPath) {
			if err := drain(); err != nil {
				return err
			}
			next, err := os.Open(c.meta.LogPath)
			if err != nil {
				continue // not created yet
			}
			f.Close()
			f = next
			reader.Reset(f)
			pending = nil
		}
	}
}

// rotated tells whether path no longer names the open file f.
func rotated(f *os.File, path string) bool {
	open, err1 := f.Stat()
	named, err2 := os.Stat(path)
	if err1 != nil || err2 != nil {
		return err2 == nil
	}
	a, ok1 := open.Sys().(*syscall.Stat_t)
	b, ok2 := named.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Ino != b.Ino
}

// writeLogLine writes the message of one CRI log line
// ("<time> <stream> <P|F> <message>\n") to the stream it names; a full (F)
// line gets its newline back.
func writeLogLine(line []byte, stdout, stderr io.Writer) error {
	fields := bytes.SplitN(bytes.TrimSuffix(line, []byte("\n")), []byte(" "), 4)
	if len(fields) < 3 {
		return nil
	}
	w := stdout
	if string(fields[1]) == "stderr" {
		w = stderr
	}
	if w == nil {
		return nil
	}
	var msg []byte
	if len(fields) == 4 {
		msg = fields[3]
	}
	if string(fields[2]) == "F" {
		msg = append(msg, '\n')
	}
	if _, err := w.Write(msg); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			log.L.Debug("attach client went away")
		}
		return err
	}
	return nil
}
