package images

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

// SharesDaemonFilesystem reports whether this process sees the files of
// the containerd listening on address as the daemon does, so that pulls
// may write layers into the snapshotter's dirs themselves: it runs as
// root, outside a user namespace, with the daemon's mount namespace and
// root dir. The daemon is found through the socket's peer credentials; a
// daemon this process cannot see (another PID namespace) does not qualify.
func SharesDaemonFilesystem(address string) (bool, error) {
	if os.Geteuid() != 0 || userns.RunningInUserNS() {
		return false, nil
	}
	pid, err := socketPeer(strings.TrimPrefix(address, "unix://"))
	if err != nil || pid <= 0 {
		return false, err
	}
	for _, check := range []func(int) (bool, error){sameMountNamespace, sameRoot} {
		if same, err := check(pid); err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

func socketPeer(path string) (int, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", path, err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, fmt.Errorf("peer of %s: %w", path, credErr)
	}
	return int(cred.Pid), nil
}

func sameMountNamespace(pid int) (bool, error) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, err
	}
	peer, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
	if os.IsNotExist(err) || os.IsPermission(err) {
		return false, nil
	}
	return err == nil && self == peer, err
}

func sameRoot(pid int) (bool, error) {
	var self, peer syscall.Stat_t
	if err := syscall.Stat("/", &self); err != nil {
		return false, err
	}
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/root/", pid), &peer); err != nil {
		if os.IsNotExist(err) || os.IsPermission(err) {
			return false, nil
		}
		return false, err
	}
	return self.Dev == peer.Dev && self.Ino == peer.Ino, nil
}
