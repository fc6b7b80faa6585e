package criclient

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/logs"
)

// LogsOptions are crictl logs' switches.
type LogsOptions struct {
	Follow     bool
	Tail       int64 // < 0: all lines
	Timestamps bool
	Since      time.Time
	LimitBytes int64 // <= 0: no limit
	// Previous reads the log of the previous attempt (restart count - 1).
	Previous bool
	// Reopen asks the runtime to reopen the log file first (after a
	// rotation by hand).
	Reopen bool
}

// ParseSince reads --since: an RFC3339 time, a time without zone
// (2013-01-02T13:23:37, local), or a duration before now (42m).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid --since %q: want a RFC3339 time or a duration such as 10m", s)
	}
	return now.Add(-d), nil
}

// Logs copies a container's log file to stdout and stderr, following it
// if asked, with k8s.io/cri-client's reader.
func (c *Client) Logs(ctx context.Context, id string, o LogsOptions, stdout, stderr io.Writer) error {
	if o.Reopen {
		cctx, cancel := c.call(ctx)
		_, err := c.Runtime.ReopenContainerLog(cctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
		cancel()
		if err != nil {
			return fmt.Errorf("reopen the log of container %q: %w", id, rpcErr(err))
		}
	}
	st, err := c.ContainerStatus(ctx, id, false)
	if err != nil {
		return err
	}
	path := st.GetStatus().GetLogPath()
	if path == "" {
		return fmt.Errorf("container %q has no log path (its pod config sets no log_directory)", id)
	}
	if o.Previous {
		path, err = previousLog(path)
		if err != nil {
			return fmt.Errorf("container %q: %w", id, err)
		}
	}
	lo := &logs.LogOptions{Follow: o.Follow, Timestamp: o.Timestamps, Since: o.Since}
	if o.Tail >= 0 {
		lo.TailLines = &o.Tail
	}
	if o.LimitBytes > 0 {
		lo.LimitBytes = &o.LimitBytes
	}
	err = logs.ReadLogs(ctx, path, st.GetStatus().GetId(), lo, statusOnly{c: c}, stdout, stderr)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of container %q: %w", id, err)
	}
	return nil
}

// previousLog maps <dir>/<n>.log to <dir>/<n-1>.log, the kubelet's layout
// for restarted containers.
func previousLog(path string) (string, error) {
	base := filepath.Base(path)
	n, err := strconv.Atoi(strings.TrimSuffix(base, ".log"))
	if err != nil || !strings.HasSuffix(base, ".log") {
		return "", fmt.Errorf("--previous needs a log named <restart count>.log, got %s", base)
	}
	if n == 0 {
		return "", fmt.Errorf("--previous: this is the first attempt (%s)", path)
	}
	return filepath.Join(filepath.Dir(path), strconv.Itoa(n-1)+".log"), nil
}

// statusOnly gives logs.ReadLogs the one RuntimeService call it makes
// (ContainerStatus, while following); other methods are never called.
type statusOnly struct {
	internalapi.RuntimeService
	c *Client
}

func (s statusOnly) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	ctx, cancel := s.c.call(ctx)
	defer cancel()
	return s.c.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: verbose})
}
