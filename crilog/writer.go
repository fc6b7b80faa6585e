package crilog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The writer is a separate process, not the program that made the
// container: tasks are created with containerd's binary:// log driver
// pointing at that program's own executable, which the shim starts as
//
//	<program> _crilog_writer <log path>
//
// with the container's stdout and stderr pipes as fds 3 and 4 and a
// readiness pipe as fd 5. The writer is a child of the shim, so it keeps
// writing while the program is stopped, restarted or upgraded: nothing is
// buffered in it at all. It exits when the shim closes the pipes (task
// deleted). A rotated log (renamed or removed) is noticed within
// reopenInterval and a new file is created at the same path, which is what
// CRI's ReopenContainerLog needs.

const (
	// WriterArg is the query key of the binary:// URI; the shim turns it
	// into the first argument.
	WriterArg = "_crilog_writer"
	// MaxLineSize is the longest message in one CRI log line; longer lines
	// are split into partial (P) lines.
	MaxLineSize    = 16 * 1024
	reopenInterval = 100 * time.Millisecond
)

// WriterArgs are the binary:// URI arguments for a container log path,
// for cio.BinaryIO(executable, WriterArgs(path)).
func WriterArgs(path string) map[string]string {
	return map[string]string{WriterArg: path}
}

// IsWriterInvocation tells main (of kcrid, kctr, or a test binary) that the
// shim started it as a container log writer.
func IsWriterInvocation(args []string) bool {
	return len(args) == 3 && args[1] == WriterArg
}

// RunWriter is the log writer's main; it returns the exit code.
func RunWriter(args []string) int {
	if !IsWriterInvocation(args) {
		fmt.Fprintf(os.Stderr, "usage: %s %s <path>\n", filepath.Base(args[0]), WriterArg)
		return 2
	}
	stdout := os.NewFile(3, "stdout")
	stderr := os.NewFile(4, "stderr")
	ready := os.NewFile(5, "ready")
	lf, err := openLogFile(args[2])
	if ready != nil {
		ready.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		// Drain the pipes so the container never blocks on a full pipe.
		lf = &logFile{}
	}
	done := make(chan struct{})
	go lf.watch(done)
	var wg sync.WaitGroup
	for _, s := range []struct {
		f    *os.File
		name string
	}{{stdout, "stdout"}, {stderr, "stderr"}} {
		if s.f == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = CopyLines(s.f, s.name, lf, time.Now)
		}()
	}
	wg.Wait()
	close(done)
	lf.close()
	return 0
}

// logFile is the CRI log file, reopened when rotated away.
type logFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	ino  uint64
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) reopen() error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	l.ino = st.Sys().(*syscall.Stat_t).Ino
	return nil
}

// watch reopens the file when its path no longer names it (rotation).
func (l *logFile) watch(done <-chan struct{}) {
	if l.path == "" {
		return
	}
	t := time.NewTicker(reopenInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		st, err := os.Stat(l.path)
		if err == nil && st.Sys().(*syscall.Stat_t).Ino == l.currentIno() {
			continue
		}
		l.mu.Lock()
		_ = l.reopen()
		l.mu.Unlock()
	}
}

func (l *logFile) currentIno() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ino
}

func (l *logFile) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(b), nil
	}
	return l.f.Write(b)
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// CopyLines reads r until EOF and writes each line to w in the CRI
// format; lines longer than MaxLineSize become P parts ending in an F part.
// A last line without newline is written as full.
func CopyLines(r io.Reader, stream string, w io.Writer, now func() time.Time) error {
	br := bufio.NewReaderSize(r, MaxLineSize)
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		partial := false
		switch {
		case err == nil:
			b = b[:len(b)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			partial = true
		case len(b) == 0:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		out = FormatLine(out[:0], now(), stream, partial, b)
		if _, werr := w.Write(out); werr != nil {
			return werr
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// FormatLine appends "<RFC3339Nano> <stream> <P|F> <msg>\n" to buf.
func FormatLine(buf []byte, ts time.Time, stream string, partial bool, msg []byte) []byte {
	buf = ts.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	if partial {
		buf = append(buf, " P "...)
	} else {
		buf = append(buf, " F "...)
	}
	buf = append(buf, msg...)
	return append(buf, '\n')
}

// File is a CRI log file that any number of streams may be copied into at
// once; each line is written whole.
type File struct {
	file *logFile
}

// OpenFile opens (creating it and its directory) the log file at path for
// appending.
func OpenFile(path string) (*File, error) {
	lf, err := openLogFile(path)
	if err != nil {
		return nil, err
	}
	return &File{file: lf}, nil
}

// Copy writes r's lines to the file as stream ("stdout" or "stderr") until
// r ends.
func (f *File) Copy(r io.Reader, stream string) error {
	return CopyLines(r, stream, f.file, time.Now)
}

// Reopen opens the path again (creating the file), for after the file was
// rotated away (CRI ReopenContainerLog).
func (f *File) Reopen() error {
	f.file.mu.Lock()
	defer f.file.mu.Unlock()
	return f.file.reopen()
}

// Close closes the file.
func (f *File) Close() {
	f.file.close()
}
