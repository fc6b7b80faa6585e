package containers

import (
	"context"
	"debug/elf"

	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// With --init the container's PID 1 is kctr's own executable in an init
// mode, bind-mounted read-only at initPath: it runs the real command as
// its child, forwards signals to it and reaps orphaned zombies, which a
// shell or an application run as PID 1 usually does not.
const (
	initArg  = "_kctr_init"
	initPath = "/sbin/kctr-init"
)

// IsInitInvocation tells main that it runs as a container's init.
func IsInitInvocation(args []string) bool {
	return len(args) >= 3 && args[1] == initArg
}

// RunInit is the init's main: it returns the child's exit status, or 128
// plus the signal that killed it, as a shell does.
func RunInit(args []string) int {
	if !IsInitInvocation(args) {
		fmt.Fprintf(os.Stderr, "usage: %s %s COMMAND [ARG...]\n", initPath, initArg)
		return 2
	}
	signals := make(chan os.Signal, 32)
	signal.Notify(signals)
	child := exec.Command(args[2], args[3:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "kctr-init: %v\n", err)
		return 127
	}
	for sig := range signals {
		s, ok := sig.(syscall.Signal)
		if !ok {
			continue
		}
		if s != syscall.SIGCHLD {
			_ = child.Process.Signal(s)
			continue
		}
		// Reap every exited child: ours ends the init, orphans just go.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid == child.Process.Pid {
				if status.Signaled() {
					return 128 + int(status.Signal())
				}
				return status.ExitStatus()
			}
		}
	}
	return 0
}

// withInit wraps the container's command in kctr's init.
func withInit(executable string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil || len(s.Process.Args) == 0 {
			return fmt.Errorf("--init: the container has no command: %w", errdefs.ErrInvalidArgument)
		}
		s.Process.Args = append([]string{initPath, initArg}, s.Process.Args...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: initPath, Type: "bind", Source: executable, Options: []string{"rbind", "ro"}})
		return nil
	}
}

// checkStatic makes sure the init can run in any image: a dynamically
// linked kctr would need the host's C library inside the container.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("--init: read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("--init: %s is dynamically linked and cannot run inside the container; build kctr with CGO_ENABLED=0: %w", path, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}
