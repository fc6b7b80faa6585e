// Command critesthelper stands in for the programs critest expects in its
// test images, which Debian's busybox lacks. It is one static binary that
// acts according to the name it runs as: nginx (a web server whose argv
// says "master process" and that writes /var/run/nginx.pid), pgrep, pkill,
// ipcs (shared memory segments only) and nonewprivs (prints its effective
// uid; installed setuid root). It uses only the standard library, so
// internal/testimages can compile it.
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

const nginxArgv0 = "nginx: master process nginx"

func main() {
	name := filepath.Base(os.Args[0])
	switch {
	case strings.HasPrefix(name, "nginx"):
		nginx()
	case name == "pgrep":
		os.Exit(pgrep(os.Args[1:], 0))
	case name == "pkill":
		os.Exit(pgrep(os.Args[1:], syscall.SIGTERM))
	case name == "ipcs":
		os.Exit(ipcs())
	case name == "nonewprivs":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		select {}
	default:
		fmt.Fprintf(os.Stderr, "critesthelper: unknown name %q\n", name)
		os.Exit(2)
	}
}

// nginx re-executes itself so its argv reads like nginx's master process,
// writes its pid file and serves a page on port 80.
func nginx() {
	if os.Args[0] != nginxArgv0 {
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, append([]string{nginxArgv0}, os.Args[1:]...), os.Environ())
		}
		fmt.Fprintln(os.Stderr, "nginx: re-exec:", err)
		os.Exit(1)
	}
	_ = os.MkdirAll("/var/run", 0o755)
	if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "nginx:", err)
	}
	fmt.Println("nginx: master process started")
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<html><body>Welcome to nginx!</body></html>")
	})
	if err := http.ListenAndServe(":80", nil); err != nil {
		fmt.Fprintln(os.Stderr, "nginx:", err)
		os.Exit(1)
	}
}

// pgrep prints the pids whose command name matches the pattern; with a
// signal it sends it to them instead (pkill). Exit 1 when none matched.
func pgrep(args []string, sig syscall.Signal) int {
	var pattern string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && sig != 0 {
			if n, err := strconv.Atoi(a[1:]); err == nil {
				sig = syscall.Signal(n)
			}
			continue
		}
		pattern = a
	}
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN")
		return 2
	}
	entries, _ := os.ReadDir("/proc")
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !re.MatchString(strings.TrimSpace(string(comm))) {
			continue
		}
		found = true
		if sig != 0 {
			_ = syscall.Kill(pid, sig)
		} else {
			fmt.Println(pid)
		}
	}
	if !found {
		return 1
	}
	return 0
}

// ipcs lists the shared memory segments of its IPC namespace.
func ipcs() int {
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcs:", err)
		return 1
	}
	defer f.Close()
	fmt.Println("\n------ Shared Memory Segments --------")
	fmt.Println("key        shmid      owner      perms      bytes      nattch     status")
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 10 {
			continue
		}
		key, _ := strconv.ParseInt(fl[0], 10, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10s %-10s %-10s\n", uint32(key), fl[1], fl[7], fl[2], fl[3], fl[6])
	}
	return 0
}
