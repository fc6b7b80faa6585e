package crilog

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriterBeside(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "kcrid")
	sibling := filepath.Join(dir, WriterProgram)
	if got := writerBeside(exe); got != exe {
		t.Errorf("without %s: got %s, want the executable itself", WriterProgram, got)
	}
	if err := os.WriteFile(sibling, []byte("#!/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := writerBeside(exe); got != exe {
		t.Errorf("with a non-executable %s: got %s, want the executable itself", WriterProgram, got)
	}
	if err := os.Chmod(sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := writerBeside(exe); got != sibling {
		t.Errorf("got %s, want %s", got, sibling)
	}
}
