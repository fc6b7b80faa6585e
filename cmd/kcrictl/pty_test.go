package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newPTY opens a pseudo-terminal pair: the control side for the test,
// the terminal side to hand to kcrictl as its stdin/stdout/stderr.
func newPTY(t *testing.T) (control, terminal *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(control.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		control.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(control.Fd()), unix.TIOCGPTN)
	if err != nil {
		control.Close()
		t.Fatal(err)
	}
	terminal, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		control.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { control.Close(); terminal.Close() })
	return control, terminal
}

// execTTY runs `kcrictl exec -it` on a pseudo-terminal of 30x100 and
// returns what the terminal showed.
func execTTY(t *testing.T, base []string, id string, cmd ...string) string {
	t.Helper()
	control, terminal := newPTY(t)
	if err := unix.IoctlSetWinsize(int(terminal.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(kcrictlBin, append(append(append([]string{}, base...), "exec", "-it", id), cmd...)...)
	c.Env = []string{"PATH=" + os.Getenv("PATH")}
	c.Stdin, c.Stdout, c.Stderr = terminal, terminal, terminal
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := control.Read(b)
			buf.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("exec -it: %v", err)
		}
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		t.Fatal("exec -it did not finish")
	}
	terminal.Close()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	return buf.String()
}
