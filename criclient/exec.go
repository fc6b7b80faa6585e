package criclient

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ExecSyncResult is what a synchronous exec produced.
type ExecSyncResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in a container and waits for it (crictl exec --sync).
// timeout bounds the command in the runtime; 0 means none.
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecSyncResult, error) {
	// The call lasts as long as the command: bound it by the command's
	// timeout plus our own, not by the short call timeout.
	var cctx context.Context
	var cancel context.CancelFunc
	if timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, timeout+max(c.Timeout, 2*time.Second))
	} else {
		cctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	r, err := c.Runtime.ExecSync(cctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: int64(timeout.Seconds())})
	if err != nil {
		return nil, fmt.Errorf("exec in container %q: %w", id, rpcErr(err))
	}
	return &ExecSyncResult{Stdout: r.GetStdout(), Stderr: r.GetStderr(), ExitCode: r.GetExitCode()}, nil
}

// StreamOptions are the terminal and streams of exec and attach.
type StreamOptions struct {
	Stdin          io.Reader // nil: no stdin
	Stdout, Stderr io.Writer
	TTY            bool
	// Transport is "spdy" (default) or "websocket". There is no
	// fallback between them: the runtime's URL is single-use.
	Transport string
}

// Exec starts a streaming exec (crictl exec -i -t) and copies the streams
// until the command ends.
func (c *Client) Exec(ctx context.Context, id string, cmd []string, o StreamOptions) error {
	cctx, cancel := c.call(ctx)
	r, err := c.Runtime.Exec(cctx, &runtimeapi.ExecRequest{
		ContainerId: id, Cmd: cmd, Tty: o.TTY,
		Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil && !o.TTY,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("exec in container %q: %w", id, rpcErr(err))
	}
	return stream(ctx, r.GetUrl(), o)
}

// Attach attaches to a running container's streams.
func (c *Client) Attach(ctx context.Context, id string, o StreamOptions) error {
	cctx, cancel := c.call(ctx)
	r, err := c.Runtime.Attach(cctx, &runtimeapi.AttachRequest{
		ContainerId: id, Tty: o.TTY,
		Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil && !o.TTY,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("attach to container %q: %w", id, rpcErr(err))
	}
	return stream(ctx, r.GetUrl(), o)
}

// stream runs the remotecommand protocol against the runtime's URL.
func stream(ctx context.Context, rawURL string, o StreamOptions) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("runtime returned a bad streaming URL %q: %w", rawURL, err)
	}
	cfg := &restclient.Config{TLSClientConfig: restclient.TLSClientConfig{Insecure: true}}
	ex, err := newExecutor(cfg, u, o.Transport)
	if err != nil {
		return err
	}
	so := remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Tty: o.TTY}
	if o.TTY {
		so.Stderr = nil
		if f, ok := o.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			state, err := term.MakeRaw(int(f.Fd()))
			if err == nil {
				defer term.Restore(int(f.Fd()), state)
			}
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			so.TerminalSizeQueue = newWinchSizes(sctx, int(f.Fd()))
		}
	}
	if err := ex.StreamWithContext(ctx, so); err != nil {
		return fmt.Errorf("stream %s: %w", u.Redacted(), err)
	}
	return nil
}

func newExecutor(cfg *restclient.Config, u *url.URL, transport string) (remotecommand.Executor, error) {
	switch transport {
	case "", "spdy":
		return remotecommand.NewSPDYExecutor(cfg, "POST", u)
	case "websocket":
		return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	}
	return nil, fmt.Errorf("unknown transport %q (use spdy or websocket)", transport)
}

// winchSizes reports the terminal size at start and after every
// SIGWINCH until ctx ends; nil from Next ends client-go's resize loop.
type winchSizes struct {
	fd    int
	sizes chan remotecommand.TerminalSize
}

func newWinchSizes(ctx context.Context, fd int) *winchSizes {
	q := &winchSizes{fd: fd, sizes: make(chan remotecommand.TerminalSize, 1)}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(sig)
		defer close(q.sizes)
		for {
			if w, h, err := term.GetSize(fd); err == nil {
				select {
				case q.sizes <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-sig:
			case <-ctx.Done():
				return
			}
		}
	}()
	return q
}

func (q *winchSizes) Next() *remotecommand.TerminalSize {
	s, ok := <-q.sizes
	if !ok {
		return nil
	}
	return &s
}
