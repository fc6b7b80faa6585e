package images_test

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/internal/testenv"
)

// listenHelperEnv makes the test binary, run again, listen on a socket
// and wait: a daemon stand-in in another mount namespace.
const listenHelperEnv = "KCTR_IMAGES_TEST_LISTEN"

func listenHelper(path string) {
	l, err := net.Listen("unix", path)
	if err != nil {
		os.Exit(3)
	}
	os.Stdout.WriteString("listening\n")
	// Serve until the test closes stdin.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

func TestSharesDaemonFilesystem(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()

	same := filepath.Join(dir, "same.sock")
	l, err := net.Listen("unix", same)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if shares, err := images.SharesDaemonFilesystem("unix://" + same); err != nil || !shares {
		t.Errorf("a daemon in this mount namespace: shares = %v, %v; want true", shares, err)
	}

	other := filepath.Join(dir, "other.sock")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), listenHelperEnv+"="+other)
	helper.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = helper.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("helper in another mount namespace did not start: %q, %v", line, err)
	}
	if shares, err := images.SharesDaemonFilesystem(other); shares {
		t.Errorf("a daemon in another mount namespace: shares = true (err %v); want false", err)
	}

	if _, err := images.SharesDaemonFilesystem(filepath.Join(dir, "missing.sock")); err == nil {
		t.Error("no error for a socket nobody listens on")
	}
}
