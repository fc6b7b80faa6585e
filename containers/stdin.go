package containers

import (
	"io"
	"sync"
)

// stdinGate connects the caller's stdin to a task.
//
// It holds input back until the task has started: the shim opens its end of
// the stdin FIFO while the task is created, and a FIFO drops what was
// written to it if its writer closes before a reader opened it, so a short
// input could vanish. Once the input reaches EOF it tells the shim to close
// the container's stdin; the shim keeps its own end of the FIFO open, so
// without that a process reading stdin (sh without -c) would never see EOF.
type stdinGate struct {
	reader  io.Reader
	ready   chan struct{}
	once    sync.Once
	mu      sync.Mutex
	closeIO func()
	eof     bool
	done    bool
}

func newStdinGate(r io.Reader) *stdinGate {
	return &stdinGate{reader: r, ready: make(chan struct{})}
}

func (g *stdinGate) Read(p []byte) (int, error) {
	<-g.ready
	g.mu.Lock()
	abandoned := g.closeIO == nil
	g.mu.Unlock()
	if abandoned {
		return 0, io.EOF
	}
	n, err := g.reader.Read(p)
	if err == io.EOF {
		g.mu.Lock()
		closeIO := g.closeIO
		first := !g.eof
		g.eof = true
		g.mu.Unlock()
		if first {
			closeIO()
		}
	}
	return n, err
}

// started lets input flow; closeIO closes the task's stdin.
func (g *stdinGate) started(closeIO func()) {
	g.mu.Lock()
	g.closeIO = closeIO
	g.mu.Unlock()
	g.once.Do(func() { close(g.ready) })
}

// abandon unblocks the copy goroutine when the task never started.
func (g *stdinGate) abandon() {
	g.once.Do(func() { close(g.ready) })
}
