package kubelet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestKcrid(t *testing.T) {
	rt := newKcrid(t)
	t.Run("Pods", func(t *testing.T) { testPods(t, rt) })
	t.Run("Foreign", func(t *testing.T) { testForeign(t, rt) })
}

func TestContainerdCRI(t *testing.T) {
	rt := newContainerdCRI(t)
	t.Run("Pods", func(t *testing.T) { testPods(t, rt) })
	t.Run("Foreign", func(t *testing.T) { testForeign(t, rt) })
}

const waitLong = 60 * time.Second

// webManifest is a pod whose init container writes the page its httpd
// serves (so the page proves the init container ran first, with env from
// fieldRefs), with a readiness probe on the page. version changes the
// manifest without changing what runs.
func webManifest(version string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, version: %q}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: setup
    image: %s
    command: [sh, -c, 'echo "hello from $(POD_NAME).$(POD_NAMESPACE) at $POD_IP" > /www/index.html; echo init done']
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: httpd
    image: %s
    command: [httpd, -f, -v, -p, "8080", -h, /www]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: http}
      periodSeconds: 1
    volumeMounts: [{name: www, mountPath: /www, readOnly: true}]
  volumes:
  - {name: www, emptyDir: {}}
`, version, busyboxImage, busyboxImage)
}

// jobsManifest holds three pods in one file: one crashing under Always,
// one finishing under OnFailure, one failing under Never.
func jobsManifest() string {
	pod := func(name, policy, script string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: [sh, -c, %q]
`, name, policy, busyboxImage, script)
	}
	return pod("crash", "Always", "echo crashing; exit 1") + "---\n" +
		pod("once", "OnFailure", "echo done; exit 0") + "---\n" +
		pod("never", "Never", "echo failing; exit 3")
}

// livenessManifest: healthy for a moment, then its exec liveness probe
// fails and the container must be restarted.
func livenessManifest() string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "sick"},
 "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
   "name": "main", "image": %q,
   "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 600"],
   "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}}]}}
`, busyboxImage)
}

// gracefulManifest traps SIGTERM and takes a moment to clean up, writing
// to a host file: the line is there only if the grace period was honoured.
func gracefulManifest(hostDir string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 10
  containers:
  - name: main
    image: %s
    command: [sh, -c, 'trap "sleep 1; echo cleaned up >> /out/log; exit 0" TERM; echo started >> /out/log; while true; do sleep 0.1; done']
    volumeMounts: [{name: out, mountPath: /out}]
  volumes:
  - {name: out, hostPath: {path: %q, type: DirectoryOrCreate}}
`, busyboxImage, hostDir)
}

const brokenManifest = `apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  containers:
  - name: main
    imagee: busybox
`

func testPods(t *testing.T, rt *criRuntime) {
	a := newAgent(t, rt)
	a.writeManifest("web.yaml", webManifest("1"))
	a.writeManifest("jobs.yaml", jobsManifest())
	a.writeManifest("sick.json", livenessManifest())
	a.writeManifest("broken.yaml", brokenManifest)
	gracefulOut := filepath.Join(t.TempDir(), "out")
	a.writeManifest("graceful.yaml", gracefulManifest(gracefulOut))
	a.start()

	// A broken manifest shows as failed to load, naming file and field.
	broken := a.waitPod("broken", "failed to load", waitLong, func(p *v1.Pod) bool { return p.Status.Reason == "FailedToLoad" })
	if msg := broken.Status.Message; !strings.Contains(msg, "broken.yaml") || !strings.Contains(msg, "imagee") {
		t.Errorf("broken manifest message %q should name the file and the field", msg)
	}

	// The web pod: init first, then httpd, ready by its probe, serving on
	// its pod IP the page the init container wrote.
	web := a.waitPod("web", "running and ready", waitLong, func(p *v1.Pod) bool {
		return p.Status.Phase == v1.PodRunning && podReady(p)
	})
	if web.Namespace != "default" || len(web.UID) != 32 {
		t.Errorf("web pod: namespace %q, UID %q; want default and a 32-digit hash", web.Namespace, web.UID)
	}
	setup := containerStatus(web, "setup")
	if setup == nil || setup.State.Terminated == nil || setup.State.Terminated.ExitCode != 0 {
		t.Errorf("init container status: %+v", setup)
	}
	ip := web.Status.PodIP
	if ip == "" {
		t.Fatal("web pod has no IP")
	}
	body := httpGet(t, "http://"+ip+":8080/index.html")
	if want := "hello from web.default at " + ip; strings.TrimSpace(body) != want {
		t.Errorf("page = %q, want %q", body, want)
	}
	logDir := filepath.Join(a.logs, fmt.Sprintf("default_web_%s", web.UID))
	waitFor(t, 10*time.Second, "the init container's log", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(logDir, "setup", "0.log"))
		return strings.Contains(string(b), " stdout F init done"), fmt.Sprintf("%q %v", b, err)
	})
	if _, err := os.Stat(filepath.Join(logDir, "httpd", "0.log")); err != nil {
		t.Errorf("httpd log: %v", err)
	}

	// Restart policies.
	a.waitPod("crash", "restarted twice with back-off", waitLong, func(p *v1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 2 && p.Status.Phase == v1.PodRunning
	})
	crash := a.pod("crash")
	// Each restart waited twice the back-off of the one before (up to the
	// max), as recorded on the instances the runtime still has.
	for _, c := range rt.containers(t, "crash", "main") {
		n, _ := strconv.Atoi(c.Annotations["io.kubernetes.container.restartCount"])
		want := time.Duration(0)
		if n > 0 {
			want = min(a.cfg.Backoff.Initial<<(n-1), a.cfg.Backoff.Max)
		}
		if got := c.Annotations["kubelet-lite.kctr.io/backoff"]; got != want.String() {
			t.Errorf("restart %d waited %s, want %s", n, got, want)
		}
	}
	if cs := containerStatus(crash, "main"); cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("crashing container's last state: %+v", cs.LastTerminationState)
	}
	// Logs of the latest instance and the one before stay; older ones
	// went with their containers.
	n := containerStatus(crash, "main").RestartCount
	crashLogs := filepath.Join(a.logs, "default_crash_"+string(crash.UID), "main")
	for _, restart := range []int32{n, n - 1} {
		if _, err := os.Stat(filepath.Join(crashLogs, fmt.Sprintf("%d.log", restart))); err != nil {
			t.Errorf("log of restart %d: %v", restart, err)
		}
	}
	once := a.waitPod("once", "succeeded", waitLong, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodSucceeded })
	if cs := containerStatus(once, "main"); cs.RestartCount != 0 {
		t.Errorf("OnFailure pod that exited 0 restarted %d times", cs.RestartCount)
	}
	never := a.waitPod("never", "failed", waitLong, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if cs := containerStatus(never, "main"); cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
		t.Errorf("Never pod container status: %+v", cs)
	}

	// Liveness failure → restart.
	a.waitPod("sick", "restarted by its liveness probe", waitLong, func(p *v1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1
	})

	// Restarting kubelet-lite adopts the running pod: same sandbox, same
	// container, no restart.
	sandboxBefore := rt.sandboxes(t, "web")
	httpdBefore := rt.containers(t, "web", "httpd")
	a.stop()
	a.start()
	a.waitPod("web", "ready again after the agent restarted", waitLong, func(p *v1.Pod) bool { return podReady(p) })
	if after := rt.sandboxes(t, "web"); len(after) != 1 || len(sandboxBefore) != 1 || after[0].Id != sandboxBefore[0].Id {
		t.Errorf("web sandbox changed across an agent restart: before %v, after %v", ids(sandboxBefore), ids(after))
	}
	if after := rt.containers(t, "web", "httpd"); len(after) != 1 || len(httpdBefore) != 1 || after[0].Id != httpdBefore[0].Id {
		t.Errorf("httpd container changed across an agent restart: before %v, after %v", ids(httpdBefore), ids(after))
	}
	if cs := containerStatus(a.pod("web"), "httpd"); cs.RestartCount != 0 {
		t.Errorf("httpd restart count after adoption = %d", cs.RestartCount)
	}

	// An edited manifest recreates the pod (new UID, new sandbox) and
	// removes the old pod's logs.
	a.writeManifest("web.yaml", webManifest("2"))
	edited := a.waitPod("web", "recreated from the edited manifest", waitLong, func(p *v1.Pod) bool {
		return p.UID != web.UID && podReady(p)
	})
	if after := rt.sandboxes(t, "web"); len(after) != 1 || after[0].Id == sandboxBefore[0].Id {
		t.Errorf("sandboxes after the edit: %v (old %s)", ids(after), sandboxBefore[0].Id)
	}
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Errorf("old pod's log dir %s: %v, want it gone", logDir, err)
	}

	// A removed manifest stops and removes the pod and its logs.
	a.removeManifest("web.yaml")
	waitFor(t, waitLong, "web pod removed from the runtime", func() (bool, string) {
		s := rt.sandboxes(t, "web")
		return len(s) == 0, fmt.Sprint(ids(s))
	})
	newLogDir := filepath.Join(a.logs, "default_web_"+string(edited.UID))
	waitFor(t, 10*time.Second, "web log dir removed", func() (bool, string) {
		_, err := os.Stat(newLogDir)
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	// /pods lists it (with a deletion timestamp) until its removal is done.
	waitFor(t, 10*time.Second, "web pod gone from /pods", func() (bool, string) {
		p := a.pod("web")
		if p == nil {
			return true, ""
		}
		return false, fmt.Sprintf("listed, deletionTimestamp %v", p.DeletionTimestamp)
	})
	// The other pods were not disturbed.
	if cs := containerStatus(a.pod("once"), "main"); cs.RestartCount != 0 {
		t.Errorf("once restarted: %+v", cs)
	}

	a.waitPod("graceful", "running", waitLong, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	waitFor(t, 10*time.Second, "the graceful pod's start line", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(gracefulOut, "log"))
		return strings.Contains(string(b), "started"), fmt.Sprint(err)
	})
	for _, f := range []string{"jobs.yaml", "sick.json", "broken.yaml", "graceful.yaml"} {
		a.removeManifest(f)
	}
	waitFor(t, waitLong, "every pod removed", func() (bool, string) {
		s, err := rt.rs.ListPodSandbox(context.Background(), nil)
		return err == nil && len(s) == 0, fmt.Sprint(len(s), err)
	})
	// The removed pod had its grace period to clean up.
	if b, err := os.ReadFile(filepath.Join(gracefulOut, "log")); err != nil || !strings.Contains(string(b), "cleaned up") {
		t.Errorf("graceful pod's log %q (%v): its SIGTERM handler did not finish", b, err)
	}
}

// testForeign: a pod made by hand is left alone, unless --remove-foreign.
func testForeign(t *testing.T, rt *criRuntime) {
	ctx := context.Background()
	foreignID, err := rt.rs.RunPodSandbox(ctx, &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "by-hand", Namespace: "default", Uid: "by-hand-uid"},
		LogDirectory: t.TempDir(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}}},
	}, "")
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	a := newAgent(t, rt)
	a.writeManifest("web.yaml", webManifest("1"))
	a.start()
	a.waitPod("web", "running", waitLong, func(p *v1.Pod) bool { return p.Status.Phase == v1.PodRunning })
	// Several relists later, the foreign sandbox is still there.
	waitRelists(a)
	if st, err := rt.rs.PodSandboxStatus(ctx, foreignID, false); err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("foreign sandbox without --remove-foreign: %v %v", st, err)
	}
	webSandbox := rt.sandboxes(t, "web")
	a.stop()

	a.cfg.RemoveForeign = true
	a.start()
	waitFor(t, waitLong, "the foreign sandbox removed", func() (bool, string) {
		s := rt.sandboxes(t, "by-hand")
		return len(s) == 0, fmt.Sprint(ids(s))
	})
	if after := rt.sandboxes(t, "web"); len(after) != 1 || after[0].Id != webSandbox[0].Id {
		t.Errorf("our pod was disturbed by --remove-foreign: %v -> %v", ids(webSandbox), ids(after))
	}
	a.removeManifest("web.yaml")
	waitFor(t, waitLong, "web removed", func() (bool, string) {
		s := rt.sandboxes(t, "web")
		return len(s) == 0, fmt.Sprint(ids(s))
	})
}

// waitRelists gives the agent time for several relists (it relists every
// 200ms in these tests): the only way to see that it did not act.
func waitRelists(a *agent) {
	time.Sleep(10 * a.cfg.RelistPeriod)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func ids[T interface{ GetId() string }](list []T) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.GetId())
	}
	return out
}
