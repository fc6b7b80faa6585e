package cri

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxExecOutput caps what ExecSync keeps of each stream (as the kubelet's
// own limit for probe output); the rest is read and dropped.
const maxExecOutput = 16 * 1024 * 1024

// ExecSync runs a command in a running container and returns its output
// and exit code. With a timeout the process is killed when it expires and
// the call fails with DeadlineExceeded.
func (r *runtimeService) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec sync: no command given: %w", errdefs.ErrInvalidArgument)
	}
	c, err := r.containers.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	state := c.status.state()
	c.mu.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("exec in container %s: it is %s: %w", c.meta.ID, state, errdefs.ErrFailedPrecondition)
	}
	ctr, task, err := r.loadTask(ctx, c.meta.ID)
	if err != nil {
		return nil, err
	}
	if task == nil {
		return nil, fmt.Errorf("exec in container %s: no task: %w", c.meta.ID, errdefs.ErrFailedPrecondition)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	pspec := *spec.Process
	pspec.Args = req.GetCmd()
	pspec.Terminal = false

	stdout, stderr := &cappedBuffer{max: maxExecOutput}, &cappedBuffer{max: maxExecOutput}
	execID := newID()[:32]
	process, err := task.Exec(ctx, execID, &pspec,
		cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(r.cfg.fifoDir())))
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	// Waiting, starting and deleting are not cancelled with the request,
	// for the reasons execStream gives: a cancelled request still kills
	// and reaps its process.
	bg := context.WithoutCancel(ctx)
	defer func() {
		if _, err := process.Delete(bg, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).WithError(err).Debug("delete exec process")
		}
	}()
	statusC, err := process.Wait(bg)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	if err := process.Start(bg); err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.meta.ID, err)
	}
	var timeout <-chan time.Time
	if t := req.GetTimeout(); t > 0 {
		timer := time.NewTimer(time.Duration(t) * time.Second)
		defer timer.Stop()
		timeout = timer.C
	}
	var st containerd.ExitStatus
	select {
	case st = <-statusC:
	case <-timeout:
		killUntilExit(bg, process, statusC)
		return nil, fmt.Errorf("exec in container %s: timeout %ds exceeded: %w", c.meta.ID, req.GetTimeout(), context.DeadlineExceeded)
	case <-ctx.Done():
		killUntilExit(bg, process, statusC)
		return nil, ctx.Err()
	}
	if io := process.IO(); io != nil {
		io.Wait()
	}
	return &runtimeapi.ExecSyncResponse{
		Stdout:   stdout.Bytes(),
		Stderr:   stderr.Bytes(),
		ExitCode: int32(st.ExitCode()),
	}, nil
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
