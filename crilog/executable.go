package crilog

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriterProgram is the small dedicated log writer, installed beside kcrid
// and kctr.
const WriterProgram = "kctr-logwriter"

// WriterExecutable is the program a shim should start as the log writer
// of a container made by the running executable: WriterProgram when it is
// installed beside it, else the executable itself (which answers to
// IsWriterInvocation in its main), so a lone binary still works.
func WriterExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable for the log writer: %w", err)
	}
	return writerBeside(exe), nil
}

// writerBeside is WriterProgram in exe's directory if it is an executable
// file there, else exe.
func writerBeside(exe string) string {
	sibling := filepath.Join(filepath.Dir(exe), WriterProgram)
	if info, err := os.Stat(sibling); err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0 {
		return sibling
	}
	return exe
}
