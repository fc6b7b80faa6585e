package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kctr/kctr/internal/testenv"
)

// TestKcrid runs the same flow against our own CRI server, kcrid, on a
// private containerd with its CRI plugin off: every command, streaming,
// stats and the events stream included.
func TestKcrid(t *testing.T) {
	testenv.RequireRoot(t)
	imgs := buildImages(t)
	dir := shortDir(t)
	bin := filepath.Join(dir, "kcrid")
	if out, err := exec.Command("go", "build", "-o", dir+"/", "../kcrid", "../kctr-logwriter").CombinedOutput(); err != nil {
		t.Fatalf("build kcrid: %v\n%s", err, out)
	}
	hosts := filepath.Join(dir, "hosts")
	writeFile(t, mkdir(t, filepath.Join(hosts, imgs.registry)), "hosts.toml",
		fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+imgs.registry, "http://"+imgs.registry))
	var nets podNets
	t.Cleanup(func() { nets.cleanup(t) })
	ctrd := testenv.NewContainerd(t, testenv.ContainerdOptions{})
	runc := ctrd.RuncOptions()
	sock := filepath.Join(dir, "kcrid.sock")
	cfg := writeFile(t, dir, "kcrid.toml", fmt.Sprintf(`listen = "unix://%s"
containerd_address = %q
containerd_namespace = "kcrictl-test"
root = %q
state = %q
sandbox_image = %q
hosts_dir = %q
cni_bin_dir = ["/usr/lib/cni"]
cni_conf_dir = %q
runc_root = %q
runc_binary = %q
`, sock, ctrd.Address(), filepath.Join(dir, "root"), filepath.Join(dir, "state"), imgs.pause, hosts,
		writeCNI(t, dir), runc.Root, runc.BinaryName))
	logPath := filepath.Join(dir, "kcrid.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Registered after the containerd cleanup, so it runs first: kcrid
	// stops before its daemon is torn down.
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("kcrid log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kcrid did not come up")
		}
	}
	testCRIFlow(t, criTarget{name: "kcrid", ep: "unix://" + sock, runtime: "kcrid",
		cgroupConf: "cgroup driver:   CGROUPFS\n", verboseInfo: true, streaming: true, stats: true, events: true}, imgs, dir, &nets)
}
