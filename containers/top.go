package containers

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// Process is one process of a container as `kctr top` shows it, read from
// the host's /proc like `ps -ef` does.
type Process struct {
	UID     string
	PID     uint32
	PPID    string
	Start   time.Time
	CPUTime time.Duration
	Command string
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture we run on.
const clockTicks = 100

// Top lists the processes running in a container.
func (m *Manager) Top(ctx context.Context, idOrName string) ([]Process, error) {
	container, err := m.Find(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("top %s: container is not running: %w", idOrName, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", idOrName, err)
	}
	pids, err := task.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", idOrName, err)
	}
	boot := bootTime()
	var out []Process
	for _, p := range pids {
		if proc, ok := readProcess(p.Pid, boot); ok {
			out = append(out, proc)
		}
	}
	return out, nil
}

func readProcess(pid uint32, boot time.Time) (Process, bool) {
	dir := fmt.Sprintf("/proc/%d", pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Process{}, false
	}
	// The command name in parentheses may hold spaces; fields follow it.
	closing := strings.LastIndexByte(string(stat), ')')
	if closing < 0 {
		return Process{}, false
	}
	fields := strings.Fields(string(stat[closing+1:]))
	if len(fields) < 20 {
		return Process{}, false
	}
	proc := Process{PID: pid, PPID: fields[1]}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	proc.CPUTime = time.Duration(utime+stime) * time.Second / clockTicks
	startTicks, _ := strconv.ParseInt(fields[19], 10, 64)
	proc.Start = boot.Add(time.Duration(startTicks) * time.Second / clockTicks)
	if status, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if uids, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(uids); len(f) > 0 {
					proc.UID = f[0]
				}
			}
		}
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	proc.Command = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	if proc.Command == "" {
		proc.Command = "[" + string(stat[strings.IndexByte(string(stat), '(')+1:closing]) + "]"
	}
	return proc, true
}

func bootTime() time.Time {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(secs, 0)
		}
	}
	return time.Time{}
}
