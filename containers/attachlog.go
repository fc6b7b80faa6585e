package containers

import (
	"io"
	"sync"

	"github.com/kctr/kctr/crilog"
)

// attachedLog tees what an attached (foreground) container prints into its
// log file, so `kctr logs` works for it as for a detached one. Unlike the
// detached log writer it lives in kctr's process: output printed after kctr
// died is not logged.
type attachedLog struct {
	file    *crilog.File
	pipes   []*io.PipeWriter
	copying sync.WaitGroup
}

func openAttachedLog(path string) (*attachedLog, error) {
	file, err := crilog.OpenFile(path)
	if err != nil {
		return nil, err
	}
	return &attachedLog{file: file}, nil
}

// tee returns a writer that goes to w and to the log as stream.
func (l *attachedLog) tee(w io.Writer, stream string) io.Writer {
	r, pw := io.Pipe()
	l.pipes = append(l.pipes, pw)
	l.copying.Add(1)
	go func() {
		defer l.copying.Done()
		_ = l.file.Copy(r, stream)
		_ = r.Close()
	}()
	if w == nil {
		return pw
	}
	return io.MultiWriter(w, pw)
}

// close flushes and closes the log once the container's output is done.
func (l *attachedLog) close() {
	for _, p := range l.pipes {
		_ = p.Close()
	}
	l.copying.Wait()
	l.file.Close()
}
