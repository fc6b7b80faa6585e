package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kctr/kctr/internal/testenv"
)

// crictlPath finds crictl v1.37: $KCTR_CRICTL, PATH, or <module>/.tools/bin.
func crictlPath() string {
	if p := os.Getenv("KCTR_CRICTL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	if root, err := testenv.ModuleRoot(); err == nil {
		if p := filepath.Join(root, ".tools", "bin", "crictl"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestCrictlE2E drives the real kcrid binary with the real crictl through
// a pod's whole life, as a user would.
func TestCrictlE2E(t *testing.T) {
	crictl := crictlPath()
	testenv.Require(t, crictl != "", "crictl not found (set KCTR_CRICTL or `go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0`)")
	p := newKcridProc(t)
	endpoint := "unix://" + p.socket
	emptyConfig := filepath.Join(p.dir, "crictl.yaml")
	writeFile(t, emptyConfig, "")
	run := func(args ...string) string {
		t.Helper()
		full := append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint, "--timeout", "30s"}, args...)
		cmd := exec.Command(crictl, full...)
		cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+emptyConfig)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		t.Logf("crictl %s (%v)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return strings.TrimSpace(string(out))
	}
	logDir := filepath.Join(p.dir, "pod-logs")
	podJSON := filepath.Join(p.dir, "pod.json")
	writeFile(t, podJSON, fmt.Sprintf(`{
  "metadata": {"name": "crictl-pod", "namespace": "default", "uid": "crictl-uid", "attempt": 1},
  "hostname": "crictl-pod",
  "log_directory": %q,
  "linux": {"security_context": {"namespace_options": {"network": 2}}}
}`, logDir))
	ctrJSON := filepath.Join(p.dir, "ctr.json")
	writeFile(t, ctrJSON, `{
  "metadata": {"name": "crictl-ctr"},
  "image": {"image": "docker.io/library/busybox:1.36"},
  "command": ["sh", "-c", "echo hello-from-crictl; exec sleep 1000"],
  "log_path": "crictl-ctr/0.log"
}`)

	if v := run("version"); !strings.Contains(v, "RuntimeName:  kcrid") {
		t.Errorf("crictl version: %s", v)
	}
	pod := run("runp", podJSON)
	run("pull", "docker.io/library/busybox:1.36")
	if images := run("images"); !strings.Contains(images, "docker.io/library/busybox") {
		t.Errorf("crictl images: %s", images)
	}
	ctr := run("create", pod, ctrJSON, podJSON)
	run("start", ctr)
	if ps := run("ps", "-q"); ps != ctr {
		t.Errorf("crictl ps -q: %q, want %q", ps, ctr)
	}
	if pods := run("pods", "-q"); pods != pod {
		t.Errorf("crictl pods -q: %q, want %q", pods, pod)
	}
	var inspect struct {
		Status struct{ State string } `json:"status"`
	}
	if err := json.Unmarshal([]byte(run("inspect", ctr)), &inspect); err != nil || inspect.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("crictl inspect: %+v %v", inspect, err)
	}
	if err := json.Unmarshal([]byte(run("inspectp", pod)), &inspect); err != nil || inspect.Status.State != "SANDBOX_READY" {
		t.Errorf("crictl inspectp: %+v %v", inspect, err)
	}
	if out := run("exec", "--sync", ctr, "cat", "/etc/hostname"); out != "crictl-pod" {
		t.Errorf("crictl exec --sync: %q", out)
	}
	if logs := run("logs", ctr); logs != "hello-from-crictl" {
		t.Errorf("crictl logs: %q", logs)
	}
	run("stop", "--timeout", "2", ctr)
	if err := json.Unmarshal([]byte(run("inspect", ctr)), &inspect); err != nil || inspect.Status.State != "CONTAINER_EXITED" {
		t.Errorf("crictl inspect after stop: %+v %v", inspect, err)
	}
	run("rm", ctr)
	run("stopp", pod)
	run("rmp", pod)
	if pods := run("pods", "-q"); pods != "" {
		t.Errorf("pods left: %q", pods)
	}
	run("info")
}
