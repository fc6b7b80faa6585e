package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kctr/kctr/internal/testenv"
)

// TestSameOutputAsCrictl runs crictl and kcrictl side by side against
// containerd's CRI and wants the same output. It needs a crictl v1.37
// binary in $KCRICTL_TEST_CRICTL (go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0).
func TestSameOutputAsCrictl(t *testing.T) {
	crictl := os.Getenv("KCRICTL_TEST_CRICTL")
	if crictl == "" {
		t.Skip("set KCRICTL_TEST_CRICTL to a crictl v1.37 binary to compare outputs")
	}
	testenv.RequireRoot(t)
	imgs := buildImages(t)
	dir := shortDir(t)
	hosts := filepath.Join(dir, "hosts")
	writeFile(t, mkdir(t, filepath.Join(hosts, imgs.registry)), "hosts.toml", fmt.Sprintf("server = %q\n", "http://"+imgs.registry))
	var nets podNets
	t.Cleanup(func() { nets.cleanup(t) })
	ctrd := testenv.NewContainerd(t, testenv.ContainerdOptions{EnableCRI: true, CNIBinDir: "/usr/lib/cni",
		CNIConfDir: writeCNI(t, dir), SandboxImage: imgs.pause, HostsDir: hosts})
	ep := "unix://" + ctrd.Address()
	cfgFile := writeFile(t, dir, "crictl.yaml", "")
	run := func(bin string, args ...string) binResult {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-r", ep, "-i", ep, "-c", cfgFile, "-t", "10s"}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return binResult{so.String(), se.String(), cmd.ProcessState.ExitCode()}
	}
	waitCRI(t, ep, cfgFile)
	run(kcrictlBin, "pull", imgs.busybox).ok(t, "pull")
	logDir := mkdir(t, filepath.Join(dir, "logs"))
	for i := range 2 {
		pod := writeFile(t, dir, fmt.Sprintf("pod%d.json", i), fmt.Sprintf(`{"metadata": {"name": "p%d", "namespace": "ns", "uid": "u%d"}, "log_directory": %q, "labels": {"n": "%d"}}`, i, i, logDir, i))
		ctr := writeFile(t, dir, fmt.Sprintf("ctr%d.json", i), fmt.Sprintf(`{"metadata": {"name": "c%d"}, "image": {"image": %q}, "command": ["sleep", "1000"], "log_path": "c%d.log", "labels": {"io.kubernetes.pod.name": "p%d"}}`, i, imgs.busybox, i, i))
		run(kcrictlBin, "run", "--no-pull", ctr, pod).ok(t, "run")
	}
	ctrID := strings.Fields(run(kcrictlBin, "ps", "-q").stdout)[0]
	for _, id := range strings.Fields(run(kcrictlBin, "pods", "-q").stdout) {
		nets.add(id)
	}
	podID := nets.ids[0]

	ago := regexp.MustCompile(`(Less than a second|About a minute|About an hour|\d+ \w+) ago`)
	spaces := regexp.MustCompile(` {2,}`)
	norm := func(s string) string {
		s = ago.ReplaceAllString(s, "T ago")
		s = spaces.ReplaceAllString(s, "  ")
		return strings.TrimRight(s, "\n") // crictl ends tables with an empty line
	}
	for _, args := range [][]string{
		{"version"}, {"info"}, {"runtime-config"},
		{"ps"}, {"ps", "-a", "-q"}, {"ps", "-o", "json"}, {"ps", "-o", "yaml"}, {"ps", "--no-trunc"}, {"ps", "--name", "c1"}, {"ps", "--label", "io.kubernetes.pod.name=p0", "-q"}, {"ps", "-v"}, {"ps", "-r"},
		{"pods"}, {"pods", "-o", "json"}, {"pods", "--label", "n=1", "-q"}, {"pods", "--no-trunc"}, {"pods", "--latest"}, {"pods", "-v"},
		{"images"}, {"images", "--digests"}, {"images", "-o", "json"}, {"images", "-q"}, {"images", "--no-trunc"}, {"images", "-v"}, {"images", "--filter", "reference=busybox"}, {"images", "-f", "dangling=false", "-q"},
		{"inspect", ctrID}, {"inspect", "-o", "yaml", ctrID}, {"inspectp", podID}, {"inspecti", imgs.busybox},
		{"inspect", "-o", "go-template", "--template", "{{.status.state}}", ctrID},
		{"exec", "-s", ctrID, "echo", "hi"},
	} {
		a, b := run(crictl, args...), run(kcrictlBin, args...)
		if a.code != b.code || norm(a.stdout) != norm(b.stdout) {
			t.Errorf("%v differs:\n--- crictl (exit %d)\n%s\n--- kcrictl (exit %d)\n%s", args, a.code, a.stdout, b.code, b.stdout)
		}
	}
}

// waitCRI waits until the CRI plugin answers Version.
func waitCRI(t *testing.T, ep, cfgFile string) {
	t.Helper()
	var r binResult
	for range 200 {
		if r = runBin(t, nil, "-r", ep, "-c", cfgFile, "version"); r.code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("CRI never answered: %s", r.stderr)
}
