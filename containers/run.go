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

// RunOptions describe a foreground run.
type RunOptions struct {
	CreateOptions
	Stdin io.Reader
	// Stdout and Stderr are written from separate goroutines: they must
	// not be one unsynchronised buffer.
	Stdout, Stderr io.Writer
	// Remove deletes the container and its snapshot once it exits.
	Remove bool
	// Signals are forwarded to the container's main process.
	Signals <-chan os.Signal
	// Resize carries terminal sizes for a TTY container; the first one
	// should come right away so the container starts with the right size.
	Resize <-chan ConsoleSize
	// Created, when set, is told the ID as soon as the container exists.
	Created func(id string)
}

// ConsoleSize is a terminal's size in characters.
type ConsoleSize struct {
	Width, Height uint32
}

// RunResult is how a foreground run ended.
type RunResult struct {
	ID       string
	ExitCode int
}

// Run creates the container, starts it with the caller's stdio attached and
// waits for it to exit. With Remove, or when starting fails, the container
// and its snapshot are gone when Run returns.
func (m *Manager) Run(ctx context.Context, opts RunOptions) (result *RunResult, retErr error) {
	container, network, err := m.create(ctx, opts.CreateOptions)
	if err != nil {
		return nil, err
	}
	if opts.Created != nil {
		opts.Created(container.ID())
	}
	cleanupCtx := context.WithoutCancel(ctx)
	var task containerd.Task
	defer func() {
		// An exited task keeps the exit code for `kctr ps`; only --rm and
		// failures delete it, while CNI DEL runs beside.
		if retErr == nil && !opts.Remove {
			return
		}
		deleteTask := func() error {
			if task == nil {
				return nil
			}
			_, err := task.Delete(cleanupCtx, containerd.WithProcessKill)
			if errdefs.IsNotFound(err) {
				return nil
			}
			return err
		}
		if err := m.destroy(cleanupCtx, container, deleteTask); err != nil && retErr == nil {
			retErr = fmt.Errorf("remove container %s: %w", shortID(container.ID()), err)
		}
	}()

	var stdin io.Reader
	var gate *stdinGate
	if opts.Stdin != nil {
		gate = newStdinGate(opts.Stdin)
		stdin = gate
		defer gate.abandon()
	}
	stdout, stderr := opts.Stdout, opts.Stderr
	if !opts.Remove {
		labels, err := container.Labels(ctx)
		if err != nil {
			return nil, err
		}
		if path := labels[LabelLogPath]; path != "" {
			attached, err := openAttachedLog(path)
			if err != nil {
				return nil, fmt.Errorf("open log of %s: %w", shortID(container.ID()), err)
			}
			defer attached.close()
			stdout = attached.tee(stdout, "stdout")
			if !opts.TTY {
				stderr = attached.tee(stderr, "stderr")
			}
		}
	}
	streams := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if opts.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	task, err = container.NewTask(ctx, cio.NewCreator(streams...))
	if err != nil {
		return nil, fmt.Errorf("create task for %s: %w", shortID(container.ID()), err)
	}

	if err := network.finish(ctx, container); err != nil {
		return nil, err
	}
	// Wait must be set up before Start, or a fast exit is missed.
	exited, err := task.Wait(cleanupCtx)
	if err != nil {
		return nil, fmt.Errorf("wait for %s: %w", shortID(container.ID()), err)
	}
	if err := task.Start(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", shortID(container.ID()), err)
	}
	if gate != nil {
		gate.started(func() { _ = task.CloseIO(cleanupCtx, containerd.WithStdinCloser) })
	}
	for {
		select {
		case size := <-opts.Resize:
			_ = task.Resize(cleanupCtx, size.Width, size.Height)
		case sig := <-opts.Signals:
			if s, ok := sig.(syscall.Signal); ok {
				_ = task.Kill(cleanupCtx, s)
			}
		case <-ctx.Done():
			_ = task.Kill(cleanupCtx, syscall.SIGKILL)
			<-exited
			return nil, ctx.Err()
		case status := <-exited:
			code, _, err := status.Result()
			if err != nil {
				return nil, fmt.Errorf("container %s: %w", shortID(container.ID()), err)
			}
			// Let the copy goroutines drain what the process wrote last.
			if taskIO := task.IO(); taskIO != nil {
				taskIO.Wait()
			}
			return &RunResult{ID: container.ID(), ExitCode: int(code)}, nil
		}
	}
}
