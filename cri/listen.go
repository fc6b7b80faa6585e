package cri

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kctr/kctr/endpoints"
)

// SocketMode is the permission of kcrid's unix socket: root and the
// socket's group may talk to it.
const SocketMode = 0o660

// Listen opens the CRI endpoint (unix:///path or a bare path). A stale
// socket left by a previous run is removed, but a socket some live process
// still answers on is refused, so two kcrids never share one.
func Listen(endpoint string) (net.Listener, error) {
	ep, err := endpoints.ParseEndpoint(endpoint, false)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", endpoint, err)
	}
	path := ep.Address
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %s: it exists and is not a socket", path)
		}
		conn, derr := net.Dial("unix", path)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("listen on %s: another process is serving on it", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, syscall.ENOENT) {
			return nil, fmt.Errorf("listen on %s: probing the existing socket: %w", path, derr)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return l, nil
}
