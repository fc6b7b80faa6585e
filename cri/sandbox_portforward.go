package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	cnins "github.com/containernetworking/plugins/pkg/ns"
)

// portForward connects stream to localhost:port inside the pod's network
// namespace (the host's for a host-network pod), IPv4 first, then IPv6,
// and copies both ways until either side is done; ctx ending (the client
// went away, kcrid stops) closes both.
//
// Only the socket is made inside the namespace: the dial runs on a thread
// switched into it (netns.Do locks the goroutine to that thread), with
// literal addresses so no resolver goroutine dials from elsewhere; the
// socket stays in the namespace it was created in.
func (r *runtimeService) portForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	sb, err := r.sandboxes.get(podID)
	if err != nil {
		return fmt.Errorf("port-forward: %w", err)
	}
	sb.mu.Lock()
	ready := sb.status.Ready
	sb.mu.Unlock()
	if !ready {
		return fmt.Errorf("port-forward to pod %s: it is not ready: %w", sb.meta.ID, errdefs.ErrFailedPrecondition)
	}
	conn, err := dialInNetNS(ctx, sb.meta.NetNSPath, port)
	if err != nil {
		return fmt.Errorf("port-forward to pod %s: %w", sb.meta.ID, err)
	}
	defer conn.Close()
	log.G(ctx).WithField("pod", sb.meta.ID).WithField("port", port).Debug("port-forward connected")

	toPod, fromPod := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		// The client is done sending: pass the half-close on, so a
		// server that reads to EOF still answers.
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	// The pod side ending ends the session; the client's side ending
	// cleanly only half-closes, the answer may still be coming.
	var copyErr error
	select {
	case copyErr = <-fromPod:
	case copyErr = <-toPod:
		if copyErr == nil {
			select {
			case copyErr = <-fromPod:
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	// Closing both ends unblocks whichever copy still runs; each sends to
	// its buffered channel and exits.
	_ = conn.Close()
	_ = stream.Close()
	if copyErr != nil && !errors.Is(copyErr, net.ErrClosed) && !errors.Is(copyErr, io.EOF) {
		return fmt.Errorf("port-forward to pod %s port %d: %w", sb.meta.ID, port, copyErr)
	}
	return nil
}

// dialInNetNS dials localhost:port in the namespace at path ("" = host).
func dialInNetNS(ctx context.Context, path string, port int32) (net.Conn, error) {
	var conn net.Conn
	dial := func(cnins.NetNS) error {
		var d net.Dialer
		var errV4, errV6 error
		if conn, errV4 = d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))); errV4 == nil {
			return nil
		}
		if conn, errV6 = d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port)))); errV6 == nil {
			return nil
		}
		return fmt.Errorf("connect to localhost:%d: IPv4: %v; IPv6: %v", port, errV4, errV6)
	}
	if path == "" {
		return conn, dial(nil)
	}
	if err := netns.LoadNetNS(path).Do(dial); err != nil {
		return nil, fmt.Errorf("in network namespace %s: %w", path, err)
	}
	return conn, nil
}
