package cri

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// execDrainTimeout bounds how long a streaming exec waits, after its
// process exited, for output still in flight. A background child that
// inherited stdout would otherwise hold the session open forever.
const execDrainTimeout = 2 * time.Second

// streamer runs the streaming sessions for the streaming server. It is
// separate from runtimeService only because the CRI methods there are
// also named Exec, Attach and PortForward.
type streamer struct{ r *runtimeService }

func (s streamer) exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return s.r.execStream(ctx, id, cmd, in, out, errOut, tty, resize)
}

func (s streamer) attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return s.r.attachStream(ctx, id, in, out, errOut, tty, resize)
}

func (s streamer) portForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	return s.r.portForward(ctx, podID, port, stream)
}

// execStream runs cmd in a running container with the session's streams
// and returns once it exited (an exitError for a non-zero code). When ctx
// ends first (the client went away, or kcrid stops) the process is
// killed: no exec outlives its session. The process and its FIFOs (under
// the state dir's fifo dir) are deleted before returning.
func (r *runtimeService) execStream(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.runningContainer(id, "exec in")
	if err != nil {
		return err
	}
	ctr, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil {
		return err
	}
	if task == nil {
		return fmt.Errorf("exec in container %s: no task: %w", c.meta.ID, errdefs.ErrFailedPrecondition)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = tty

	stdinEnded := make(chan struct{})
	var in io.Reader
	if stdin != nil {
		in = &eofSignal{r: stdin, ended: stdinEnded}
	}
	// The shim wants every output FIFO of a process without a terminal:
	// streams the client did not ask for are read and dropped.
	out, errOut := discardIfNil(stdout), discardIfNil(stderr)
	opts := []cio.Opt{cio.WithStreams(in, out, errOut), cio.WithFIFODir(r.cfg.fifoDir())}
	if tty {
		opts = []cio.Opt{cio.WithStreams(in, out, nil), cio.WithFIFODir(r.cfg.fifoDir()), cio.WithTerminal}
	}
	// containerd calls below must finish even when the session's context
	// is gone, or a killed process would be left undeleted.
	bg := context.WithoutCancel(ctx)
	process, err := task.Exec(ctx, "exec-"+newID()[:24], &pspec, cio.NewCreator(opts...))
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	defer func() {
		if _, err := process.Delete(bg, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("container", c.meta.ID).Warn("delete exec process")
		}
	}()
	statusC, err := process.Wait(bg)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	// Start is not cancelled with the session: the process can be running
	// in the shim before the call returns, and a cancelled call would leave
	// it unkilled (the shim refuses to kill an exec whose start it has not
	// finished). A session that ended meanwhile is seen below.
	if err := process.Start(bg); err != nil {
		return fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}

	done := make(chan struct{})
	var helpers sync.WaitGroup
	defer func() {
		close(done)
		helpers.Wait()
	}()
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		select {
		case <-stdinEnded:
			// The client closed stdin: close the process's stdin too
			// (the shim keeps its own end open until told).
			if err := process.CloseIO(bg, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				log.G(ctx).WithError(err).Debug("close exec stdin")
			}
		case <-done:
		}
	}()
	if tty && resize != nil {
		helpers.Add(1)
		go func() {
			defer helpers.Done()
			forwardResizes(bg, process, resize, done)
		}()
	}

	var st containerd.ExitStatus
	select {
	case st = <-statusC:
	case <-ctx.Done():
		killUntilExit(bg, process, statusC)
		return ctx.Err()
	}
	if err := st.Error(); err != nil {
		return fmt.Errorf("exec in container %s: wait: %w", c.meta.ID, err)
	}
	drainIO(ctx, process.IO())
	if code := st.ExitCode(); code != 0 {
		return exitError(code)
	}
	return nil
}

// killRetry is how long to wait for a killed exec process to exit before
// sending SIGKILL again: a shim busy under load can fail a kill call.
const killRetry = time.Second

// killUntilExit kills an exec process whose session ended and waits for
// its exit, repeating the kill until the exit arrives.
func killUntilExit(ctx context.Context, process containerd.Process, exited <-chan containerd.ExitStatus) {
	for {
		if err := process.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).WithField("exec", process.ID()).Warn("kill exec process of a closed session; retrying")
		}
		timer := time.NewTimer(killRetry)
		select {
		case <-exited:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// drainIO waits for the output copies of an exited process, up to
// execDrainTimeout; Delete then cancels whatever is left.
func drainIO(ctx context.Context, pio cio.IO) {
	if pio == nil {
		return
	}
	drained := make(chan struct{})
	go func() {
		pio.Wait()
		close(drained)
	}()
	timer := time.NewTimer(execDrainTimeout)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		log.G(ctx).Debug("exec output still open after the process exited; closing it")
	case <-ctx.Done():
	}
}

// resizer is a process or task whose terminal can be resized.
type resizer interface {
	Resize(ctx context.Context, w, h uint32) error
}

// forwardResizes applies terminal sizes until sizes closes or done.
func forwardResizes(ctx context.Context, p resizer, sizes <-chan remotecommand.TerminalSize, done <-chan struct{}) {
	for {
		select {
		case size, ok := <-sizes:
			if !ok {
				return
			}
			if size.Width == 0 || size.Height == 0 {
				continue
			}
			if err := p.Resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil {
				log.G(ctx).WithError(err).Debug("resize terminal")
			}
		case <-done:
			return
		}
	}
}

// discardIfNil is w, or io.Discard for a stream the client did not open.
func discardIfNil(w io.WriteCloser) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// eofSignal closes ended once r is exhausted (or fails).
type eofSignal struct {
	r     io.Reader
	ended chan struct{}
	once  sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.ended) })
	}
	return n, err
}
