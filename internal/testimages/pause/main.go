// Command pause is the process that holds a pod sandbox's namespaces open.
//
// It does nothing but wait: SIGTERM or SIGINT end it with status 0, and
// because it usually runs as PID 1 of the pod's PID namespace it reaps every
// child that gets re-parented to it, so exited processes never pile up as
// zombies. It depends only on the standard library so the image builder can
// compile it statically anywhere, even outside this module.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is printed by -v so tests and operators can tell this build apart
// from the upstream pause image.
const version = "kctr-pause 1.0"

func main() {
	showVersion := flag.Bool("v", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}

	// Subscribe before anything else so a SIGTERM that arrives early is not
	// lost (as PID 1 an unhandled signal would simply be ignored).
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)

	// Children may have exited before the handler existed.
	reap()
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child without blocking. Signals coalesce, so one
// SIGCHLD can stand for many exits: keep waiting until nothing is left.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
