package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args       []string
	Env        []string
	WorkingDir string
	// User is "uid", "uid:gid", "name" or "name:group", resolved in the
	// container's /etc/passwd and /etc/group.
	User           string
	TTY            bool
	Detach         bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Signals        <-chan os.Signal
	Resize         <-chan ConsoleSize
}

// Exec runs a process in the container and returns its exit code (0 at
// once when detached).
func (m *Manager) Exec(ctx context.Context, idOrName string, opts ExecOptions) (exitCode int, retErr error) {
	if len(opts.Args) == 0 {
		return 0, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return 0, err
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return 0, fmt.Errorf("exec in %s: container is not running: %w", idOrName, errdefs.ErrFailedPrecondition)
		}
		return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
	}
	status, err := task.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
	}
	if status.Status != containerd.Running {
		return 0, fmt.Errorf("exec in %s: container is %s, not running: %w", idOrName, status.Status, errdefs.ErrFailedPrecondition)
	}
	spec, err := container.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
	}
	process := *spec.Process
	process.Args = opts.Args
	process.Terminal = opts.TTY
	process.Env = append(append([]string(nil), spec.Process.Env...), opts.Env...)
	if opts.WorkingDir != "" {
		process.Cwd = opts.WorkingDir
	}
	if opts.User != "" {
		user, err := resolveUser(fmt.Sprintf("/proc/%d/root", task.Pid()), opts.User)
		if err != nil {
			return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
		}
		process.User = user
	}

	var streams []cio.Opt
	var gate *stdinGate
	if opts.Detach {
		streams = append(streams, cio.WithStreams(nil, io.Discard, io.Discard))
	} else {
		var stdin io.Reader
		if opts.Stdin != nil {
			gate = newStdinGate(opts.Stdin)
			stdin = gate
			defer gate.abandon()
		}
		streams = append(streams, cio.WithStreams(stdin, opts.Stdout, opts.Stderr))
	}
	if opts.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(ctx, execID, &process, cio.NewCreator(streams...))
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	if !opts.Detach {
		defer func() {
			if _, err := proc.Delete(cleanupCtx, containerd.WithProcessKill); err != nil && retErr == nil && !errdefs.IsNotFound(err) {
				retErr = fmt.Errorf("exec in %s: delete process: %w", idOrName, err)
			}
		}()
	}
	exited, err := proc.Wait(cleanupCtx)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in %s: start %q: %w", idOrName, opts.Args[0], err)
	}
	if opts.Detach {
		return 0, nil
	}
	if gate != nil {
		gate.started(func() { _ = proc.CloseIO(cleanupCtx, containerd.WithStdinCloser) })
	}
	for {
		select {
		case size := <-opts.Resize:
			_ = proc.Resize(cleanupCtx, size.Width, size.Height)
		case sig := <-opts.Signals:
			if s, ok := sig.(syscall.Signal); ok {
				_ = proc.Kill(cleanupCtx, s)
			}
		case <-ctx.Done():
			_ = proc.Kill(cleanupCtx, syscall.SIGKILL)
			<-exited
			return 0, ctx.Err()
		case st := <-exited:
			code, _, err := st.Result()
			if err != nil {
				return 0, fmt.Errorf("exec in %s: %w", idOrName, err)
			}
			if procIO := proc.IO(); procIO != nil {
				procIO.Wait()
			}
			return int(code), nil
		}
	}
}
