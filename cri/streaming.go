package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/containerd/errdefs"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Exec, Attach and PortForward check the request and the object it names,
// then return a URL on the streaming server (streaming_server.go) where
// the session runs: exec in container_exec_stream.go, attach in
// container_attach.go, port-forward in sandbox_portforward.go.

func (r *runtimeService) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkStreams("exec", req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return nil, err
	}
	c, err := r.runningContainer(req.GetContainerId(), "exec in")
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.meta.ID
	return r.streams.getExec(req)
}

func (r *runtimeService) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := checkStreams("attach", req.GetStdin(), req.GetStdout(), req.GetStderr(), req.GetTty()); err != nil {
		return nil, err
	}
	c, err := r.runningContainer(req.GetContainerId(), "attach to")
	if err != nil {
		return nil, err
	}
	if req.GetStdin() && !c.config.GetStdin() {
		return nil, fmt.Errorf("attach to container %s with stdin: it was not created with stdin: %w", c.meta.ID, errdefs.ErrFailedPrecondition)
	}
	req.ContainerId = c.meta.ID
	return r.streams.getAttach(req)
}

func (r *runtimeService) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := r.sandboxes.get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("port-forward: %w", err)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port-forward to pod %s: port %d is out of range: %w", sb.meta.ID, p, errdefs.ErrInvalidArgument)
		}
	}
	sb.mu.Lock()
	ready := sb.status.Ready
	sb.mu.Unlock()
	if !ready {
		return nil, fmt.Errorf("port-forward to pod %s: it is not ready: %w", sb.meta.ID, errdefs.ErrFailedPrecondition)
	}
	req.PodSandboxId = sb.meta.ID
	return r.streams.getPortForward(req)
}

// checkStreams applies the CRI's rules for exec and attach streams.
func checkStreams(what string, stdin, stdout, stderr, tty bool) error {
	if tty && stderr {
		return fmt.Errorf("%s: tty and stderr cannot both be set (a terminal has one output): %w", what, errdefs.ErrInvalidArgument)
	}
	if !stdin && !stdout && !stderr {
		return fmt.Errorf("%s: one of stdin, stdout and stderr must be set: %w", what, errdefs.ErrInvalidArgument)
	}
	return nil
}

// runningContainer finds a container that runs, for verb ("exec in").
func (r *runtimeService) runningContainer(id, verb string) (*container, error) {
	c, err := r.containers.get(id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	state := c.status.state()
	c.mu.Unlock()
	if state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("%s container %s: it is %s: %w", verb, c.meta.ID, state, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

// exitError reports a command's non-zero exit code to the streaming
// handlers, which send it to the client.
func exitError(code uint32) error {
	return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
}

// commandStatus is the v4/v5 error-channel message for how a session
// ended: the JSON status client-go decodes into an exit code or error.
func commandStatus(err error) []byte {
	st := metav1.Status{Status: metav1.StatusSuccess}
	var exit utilexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		st = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: err.Error(),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type:    remotecommand.ExitCodeCauseType,
				Message: strconv.Itoa(exit.ExitStatus()),
			}}},
		}
	default:
		st = metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  metav1.StatusReasonInternalError,
			Message: fmt.Sprintf("Internal error occurred: %v", err),
			Code:    http.StatusInternalServerError,
		}
	}
	b, _ := json.Marshal(st)
	return b
}

// decodeResizes sends the terminal sizes read from r (JSON objects, as
// client-go writes them) to sizes until r ends or ctx does; it closes sizes.
func decodeResizes(ctx context.Context, r io.Reader, sizes chan<- remotecommand.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(r)
	for {
		var size remotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case sizes <- size:
		case <-ctx.Done():
			return
		}
	}
}
