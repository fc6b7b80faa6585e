package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal pair: the side a terminal emulator
// holds, and the side a shell runs on.
func openPTY(t *testing.T) (control, terminal *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(control.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(control.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return control, terminal
}

// TestRunInteractiveTerminal runs `kctr run -it` on a real pseudo-terminal
// of 100x30, types into the container's shell and reads its answers.
func TestRunInteractiveTerminal(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	if r := kctr(t, ns, "pull", "-q", ref); r.code != 0 {
		t.Fatal(r.stderr)
	}
	control, terminal := openPTY(t)
	defer control.Close()
	if err := unix.IoctlSetWinsize(int(terminal.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 100}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kctrBinary, append(globalArgs(ns), "run", "--rm", "-it", ref, "sh")...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = terminal, terminal, terminal
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	terminal.Close()

	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&screen, control) // ends with EIO when kctr exits
		close(copied)
	}()
	// Typed ahead: kctr holds input back until the container started.
	fmt.Fprint(control, "tty; stty size; exit 5\r")

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		exitErr, ok := err.(*exec.ExitError)
		if !ok || exitErr.ExitCode() != 5 {
			t.Fatalf("kctr run -it: %v, want exit status 5\n%s", err, screen.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("kctr run -it did not finish; screen:\n%s", screen.String())
	}
	<-copied
	out := screen.String()
	if !strings.Contains(out, "/dev/pts/") {
		t.Errorf("the container's stdin is not a terminal:\n%q", out)
	}
	if !strings.Contains(out, "30 100") {
		t.Errorf("the container's terminal is not 30x100:\n%q", out)
	}
}
