package cri

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	dir, err := os.MkdirTemp("", "kcrid-listen-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sub", "kcrid.sock")

	l, err := Listen("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != SocketMode {
		t.Errorf("socket mode %v %v", st.Mode(), err)
	}
	// A live socket is refused.
	if _, err := Listen("unix://" + path); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	// A stale one (nobody accepting) is replaced.
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix://" + file); err == nil {
		t.Error("Listen replaced a regular file")
	}
	if _, err := Listen("tcp://127.0.0.1:1"); err == nil {
		t.Error("Listen accepted a tcp endpoint")
	}
}
