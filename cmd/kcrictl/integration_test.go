package main

import (
	"bufio"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// Names private to this suite: other suites use other bridges/subnets.
const (
	testBridge  = "kcrictltest0"
	testSubnet  = "10.232.0.0/16"
	testNetName = "kcrictltest"
)

// images are built once and pushed to one registry per test run.
type testImages struct {
	registry, busybox, pause string
}

var (
	imagesOnce sync.Once
	imagesVal  testImages
	imagesErr  error
)

func buildImages(t *testing.T) testImages {
	t.Helper()
	imagesOnce.Do(func() {
		reg := testenv.StartRegistry(testenv.RegistryOptions{})
		// The registry lives until the process ends: subtests share it.
		b := testimages.NewBuilder("")
		bb, err := b.Busybox()
		if err != nil {
			imagesErr = err
			return
		}
		pause, err := b.Pause()
		if err != nil {
			imagesErr = err
			return
		}
		imagesVal = testImages{registry: reg.Host(), busybox: reg.Host() + "/kcrictl/busybox:1", pause: reg.Host() + "/kcrictl/pause:3.9"}
		ctx := context.Background()
		if imagesErr = testimages.Push(ctx, bb, imagesVal.busybox); imagesErr != nil {
			return
		}
		imagesErr = testimages.Push(ctx, pause, imagesVal.pause)
	})
	if imagesErr != nil {
		t.Fatalf("test images: %v", imagesErr)
	}
	return imagesVal
}

// writeCNI writes the suite's bridge network config; host-local keeps
// its allocations in dir, not in /var/lib/cni.
func writeCNI(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	list := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}`, testNetName, testBridge, filepath.Join(dir, "ipam"), testSubnet)
	writeFile(t, conf, "10-kcrictltest.conflist", list)
	return conf
}

// podNets records the pods a test ran on our network, so cleanup can
// find the nat chain the bridge plugin leaves for each of them (named from
// the network name and the sandbox ID) without touching other suites'.
// Our network has ipMasq off, so today there are none; the sweep keeps
// the host clean if that ever changes.
type podNets struct {
	mu  sync.Mutex
	ids []string
}

func (p *podNets) add(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, id)
	return id
}

// cniChainName is the bridge plugin's per-pod nat chain: "CNI-" and the
// sha512 of network name and container ID, 28 characters in all.
func cniChainName(network, id string) string {
	return fmt.Sprintf("CNI-%x", sha512.Sum512([]byte(network+id)))[:28]
}

// cleanup removes the empty CNI-* nat chains of our pods, then our bridge.
func (p *podNets) cleanup(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range p.ids {
		chain := cniChainName(testNetName, id)
		rules, err := exec.Command("iptables", "-w", "-t", "nat", "-S", chain).Output()
		if err != nil {
			continue // gone already
		}
		if strings.TrimSpace(string(rules)) != "-N "+chain {
			t.Errorf("nat chain %s of pod %s still has rules:\n%s", chain, id, rules)
			continue
		}
		if out, err := exec.Command("iptables", "-w", "-t", "nat", "-X", chain).CombinedOutput(); err != nil {
			t.Errorf("iptables -X %s: %v %s", chain, err, out)
		} else {
			t.Logf("removed the empty nat chain %s of pod %.13s", chain, id)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + testBridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", testBridge).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v %s", testBridge, err, out)
		}
	}
}

func TestContainerdCRI(t *testing.T) {
	testenv.RequireRoot(t)
	if testing.Short() {
		t.Skip("short mode")
	}
	imgs := buildImages(t)
	for _, v := range []string{"1.6", "2.4"} {
		t.Run(v, func(t *testing.T) {
			if _, err := testenv.ContainerdBinDir(v, ""); err != nil {
				testenv.Require(t, false, "%v", err)
			}
			testContainerdCRI(t, v, imgs)
		})
	}
}

// criTarget is a CRI server under test and what it supports.
type criTarget struct {
	name    string // for logs: "containerd 1.6", "kcrid"
	ep      string
	runtime string // RuntimeName it reports
	// containerd: info has a config key; verbose inspect has info.
	verboseInfo bool
	streaming   bool   // exec/attach/port-forward through a streaming URL
	events      bool   // GetContainerEvents
	stats       bool   // ListContainerStats and UpdateContainerResources
	cgroupConf  string // runtime-config output; "" means Unimplemented
}

func testContainerdCRI(t *testing.T, version string, imgs testImages) {
	dir := shortDir(t)
	hosts := filepath.Join(dir, "hosts")
	writeFile(t, mkdir(t, filepath.Join(hosts, imgs.registry)), "hosts.toml",
		fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+imgs.registry, "http://"+imgs.registry))
	var nets podNets
	t.Cleanup(func() { nets.cleanup(t) }) // after the daemon's Stop tore the pods down
	ctrd := testenv.NewContainerd(t, testenv.ContainerdOptions{
		Version: version, EnableCRI: true, CNIBinDir: "/usr/lib/cni", CNIConfDir: writeCNI(t, dir),
		SandboxImage: imgs.pause, HostsDir: hosts,
	})
	tg := criTarget{name: "containerd " + version, ep: "unix://" + ctrd.Address(), runtime: "containerd",
		verboseInfo: true, streaming: true, events: version != "1.6", stats: true}
	if version != "1.6" { // containerd 1.6 answers RuntimeConfig with Unimplemented
		tg.cgroupConf = "cgroup driver:   CGROUPFS\n"
	}
	testCRIFlow(t, tg, imgs, dir, &nets)
}

// testCRIFlow runs the user-visible commands with the built binary
// against one CRI server, from version to rmi.
func testCRIFlow(t *testing.T, tg criTarget, imgs testImages, dir string, nets *podNets) {
	start := time.Now()
	version := tg.name
	emptyCfg := writeFile(t, dir, "crictl.yaml", "")
	base := []string{"-r", tg.ep, "-c", emptyCfg, "-t", "10s"}
	k := func(args ...string) binResult { return runBin(t, nil, append(append([]string{}, base...), args...)...) }
	kok := func(args ...string) binResult { t.Helper(); return k(args...).ok(t, args...) }

	// A CRI plugin starts serving shortly after its daemon answers.
	deadline := time.Now().Add(20 * time.Second)
	var ver binResult
	for {
		ver = runBin(t, nil, "-r", tg.ep, "-c", emptyCfg, "version")
		if ver.code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ver.ok(t, "version")
	if !strings.Contains(ver.stdout, "RuntimeName:  "+tg.runtime) || !strings.Contains(ver.stdout, "RuntimeApiVersion:  v1") {
		t.Errorf("version:\n%s", ver.stdout)
	}
	if strings.Contains(ver.stderr, "deprecated") {
		t.Errorf("explicit endpoint warned: %s", ver.stderr)
	}

	var info map[string]any
	if err := json.Unmarshal([]byte(kok("info").stdout), &info); err != nil || info["status"] == nil || (tg.verboseInfo && info["config"] == nil) {
		t.Errorf("info: %v %v", err, info)
	}

	// Images.
	if out := kok("pull", imgs.busybox).stdout; !regexp.MustCompile(`^Image is up to date for sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("pull printed %q", out)
	}
	out := kok("images").stdout
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(imgs.registry+"/kcrictl/busybox") + `\s+1\s+[0-9a-f]{13}\s+\S+B\s*$`).MatchString(out) {
		t.Errorf("images:\n%s", out)
	}
	var il struct {
		Images []struct {
			ID       string
			RepoTags []string
		}
	}
	if err := json.Unmarshal([]byte(kok("images", "-o", "json").stdout), &il); err != nil || len(il.Images) < 1 {
		t.Errorf("images -o json: %v %s", err, out)
	}
	if out := kok("inspecti", "-o", "go-template", "--template", "{{index .status.repoTags 0}}", imgs.busybox).stdout; strings.TrimSpace(out) != imgs.busybox {
		t.Errorf("inspecti = %q", out)
	}
	kok("imagefsinfo")

	// Pod and container.
	logDir := mkdir(t, filepath.Join(dir, "logs"))
	// A cgroup parent, as the kubelet always sets one: pod stats need it.
	cgParent := "/kcrictl-" + filepath.Base(dir)
	t.Cleanup(func() { removeCgroup(t, cgParent) }) // runs after the runtime stopped
	pod := writeFile(t, dir, "pod.json", fmt.Sprintf(`{"metadata": {"name": "kcrictl-pod", "namespace": "kcrictl", "uid": "u-1"},
  "log_directory": %q, "labels": {"suite": "kcrictl"}, "linux": {"cgroup_parent": %q}}`, logDir, cgParent))
	ctr := writeFile(t, dir, "ctr.yaml", fmt.Sprintf(`metadata:
  name: box
image:
  image: %s
command: ["sh", "-c", "trap 'exit 0' TERM; echo hello-out; echo hello-err >&2; while true; do sleep 0.2; done"]
log_path: box/0.log
labels:
  io.kubernetes.pod.name: kcrictl-pod
  io.kubernetes.pod.namespace: kcrictl
`, imgs.busybox))
	t0 := time.Now()
	podID := nets.add(strings.TrimSpace(kok("runp", pod).stdout))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(podID) {
		t.Fatalf("runp printed %q", podID)
	}
	ctrID := strings.TrimSpace(kok("create", podID, ctr, pod).stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ctrID) {
		t.Fatalf("create printed %q", ctrID)
	}
	if out := kok("start", ctrID).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("start printed %q", out)
	}
	t.Logf("%s: runp+create+start %v", version, time.Since(t0).Round(time.Millisecond))

	if out := kok("pods", "-q", "--name", "kcrictl-pod", "--label", "suite=kcrictl").stdout; strings.TrimSpace(out) != podID {
		t.Errorf("pods -q = %q", out)
	}
	out = kok("pods").stdout
	if !regexp.MustCompile(`(?m)^` + podID[:13] + `\s+.+ ago\s+Ready\s+kcrictl-pod\s+kcrictl\s+0\s+\(default\)\s*$`).MatchString(out) {
		t.Errorf("pods:\n%s", out)
	}
	var pl struct {
		Items []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Metadata struct{ Name, Namespace, UID string }
		}
	}
	if err := json.Unmarshal([]byte(kok("pods", "-o", "json").stdout), &pl); err != nil || len(pl.Items) != 1 || pl.Items[0].State != "SANDBOX_READY" {
		t.Errorf("pods -o json: %v %+v", err, pl)
	}
	out = kok("ps").stdout
	if !regexp.MustCompile(`(?m)^` + ctrID[:13] + `\s+.+\s+.+ ago\s+Running\s+box\s+0\s+` + podID[:13] + `\s+kcrictl-pod\s+kcrictl\s*$`).MatchString(out) {
		t.Errorf("ps:\n%s", out)
	}
	var cl struct {
		Containers []struct {
			ID           string `json:"id"`
			PodSandboxID string `json:"podSandboxId"`
			State        string `json:"state"`
			Image        struct{ Image string }
		}
	}
	if err := json.Unmarshal([]byte(kok("ps", "-o", "json").stdout), &cl); err != nil || len(cl.Containers) != 1 ||
		cl.Containers[0].ID != ctrID || cl.Containers[0].PodSandboxID != podID || cl.Containers[0].State != "CONTAINER_RUNNING" {
		t.Errorf("ps -o json: %v %+v", err, cl)
	}
	if out := kok("ps", "-q", "--image", imgs.busybox).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("ps --image = %q", out)
	}
	if out := kok("ps", "-q", "--pod", podID, "--name", "^box$", "--state", "running").stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("ps --pod --name --state = %q", out)
	}
	if out := kok("inspect", "-o", "go-template", "--template", "{{.status.state}} {{.status.metadata.name}}", ctrID).stdout; strings.TrimSpace(out) != "CONTAINER_RUNNING box" {
		t.Errorf("inspect template = %q", out)
	}
	var insp map[string]any
	if err := json.Unmarshal([]byte(kok("inspect", ctrID).stdout), &insp); err != nil || (tg.verboseInfo && insp["info"] == nil) {
		t.Errorf("inspect lacks info: %v", err)
	}
	if out := kok("inspectp", "-o", "yaml", podID).stdout; !strings.Contains(out, "state: SANDBOX_READY") || !strings.Contains(out, "10.232.") {
		t.Errorf("inspectp yaml lacks state or pod IP:\n%s", out)
	}

	// exec: synchronous, exit codes, and streaming through the runtime's URL.
	if out := kok("exec", "--sync", ctrID, "echo", "hi").stdout; out != "hi\n" {
		t.Errorf("exec --sync = %q", out)
	}
	if r := k("exec", "-s", ctrID, "sh", "-c", "echo err >&2; exit 3"); r.code != 3 || r.stderr != "err\n" {
		t.Errorf("exec -s exit: %+v", r)
	}
	// exec in the containers a filter selects.
	if out := kok("exec", "-s", "--name", "^box$", "echo", "hi").stdout; out != ctrID+":\nhi\n" {
		t.Errorf("exec -s --name = %q", out)
	}
	if out := kok("exec", "-s", "-q", "--pod", podID, "echo", "hi").stdout; out != "hi\n" {
		t.Errorf("exec -s -q --pod = %q", out)
	}
	k("exec", "-s", "--name", "^nothing$", "true").failsWith(t, "no container matches the filters")
	if r := k("exec", "-s", "-e", "-l", "false"); r.code != 0 {
		t.Errorf("exec --ignore-errors: %+v", r)
	}
	if tg.streaming {
		if out := kok("exec", ctrID, "echo", "streamed").stdout; out != "streamed\n" {
			t.Errorf("streaming exec = %q", out)
		}
		if r := runBinStdin(t, "from-stdin\n", append(base, "exec", "-i", ctrID, "cat")...); r.code != 0 || r.stdout != "from-stdin\n" {
			t.Errorf("exec -i: %+v", r)
		}
		if out := kok("exec", "-t", ctrID, "tty").stdout; !strings.HasPrefix(out, "/dev/pts/") {
			t.Errorf("exec -t tty = %q", out)
		}
		// On a real terminal: raw mode, and the container sees our size (the
		// resize message races with the command start, hence the sleep).
		if out := execTTY(t, base, ctrID, "sh", "-c", "sleep 0.5; stty size"); !strings.Contains(out, "30 100") {
			t.Errorf("exec -it stty size on a 30x100 terminal showed %q", out)
		}
		// containerd's streaming server refuses client-go's websocket
		// handshake (403); the error must still be one line.
		if r := k("exec", "--transport", "websocket", ctrID, "true"); r.code != 0 {
			r.failsWith(t, "stream http://127.0.0.1:")
		}
	}

	// logs
	var logs binResult
	for range 50 {
		if logs = kok("logs", ctrID); strings.Contains(logs.stdout, "hello-out") && strings.Contains(logs.stderr, "hello-err") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs.stdout != "hello-out\n" || logs.stderr != "hello-err\n" {
		t.Errorf("logs: %+v", logs)
	}
	if r := kok("logs", "--stream", "stderr", ctrID); r.stdout != "" || r.stderr != "hello-err\n" {
		t.Errorf("logs --stream stderr: %+v", r)
	}
	if r := kok("logs", "--reopen", "-s", "stdout", ctrID); r.stdout != "hello-out\n" || r.stderr != "" {
		t.Errorf("logs --reopen -s stdout: %+v", r)
	}
	// The two lines come through separate pipes: either may be last.
	if out := kok("logs", "-t", "--tail", "1", ctrID); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ hello-(out|err)\n$`).MatchString(out.stdout + out.stderr) {
		t.Errorf("logs -t --tail 1: %+v", out)
	}
	if out := kok("logs", "--since", "1s", ctrID); time.Since(t0) > 3*time.Second && out.stdout != "" {
		t.Errorf("logs --since 1s: %+v", out)
	}

	if tg.stats {
		// stats, statsp, update
		var sl struct {
			Stats []struct {
				Attributes struct{ ID string }
			}
		}
		if err := json.Unmarshal([]byte(kok("stats", "-o", "json").stdout), &sl); err != nil || len(sl.Stats) != 1 || sl.Stats[0].Attributes.ID != ctrID {
			t.Errorf("stats -o json: %v %+v", err, sl)
		}
		if out := kok("stats", "--id", ctrID).stdout; !regexp.MustCompile(`(?m)^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES\s+SWAP\s*\n` + ctrID[:13] + `\s+box\s+\d+\.\d\d\s+\S+B`).MatchString(out) {
			t.Errorf("stats table:\n%s", out)
		}
		if out := kok("statsp", "-o", "json").stdout; !strings.Contains(out, podID) {
			t.Errorf("statsp -o json lacks the pod:\n%s", out)
		}
		if out := kok("statsp", "--id", podID).stdout; !regexp.MustCompile(`(?m)^POD\s+POD ID\s+CPU %\s+MEM\s*\nkcrictl-pod\s+` + podID[:13] + `\s+\d+\.\d\d\s+\S+B`).MatchString(out) {
			t.Errorf("statsp table:\n%s", out)
		}
		if out := kok("update", "--memory", "134217728", "--cpu-share", "512", ctrID).stdout; strings.TrimSpace(out) != ctrID {
			t.Errorf("update printed %q", out)
		}
	}

	if tg.streaming {
		// port-forward to a second container serving HTTP on 8080.
		web := writeFile(t, dir, "web.yaml", fmt.Sprintf("metadata: {name: web}\nimage: {image: %s}\ncommand: [httpd, -f, -p, \"8080\", -h, /etc]\n", imgs.busybox))
		webID := strings.TrimSpace(kok("create", podID, web, pod).stdout)
		kok("start", webID)
		// Forwarding to a port nobody listens on ends port-forward (as
		// kubectl's does): wait for httpd first.
		for i := 0; k("exec", "-s", webID, "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/passwd").code != 0; i++ {
			if i == 50 {
				t.Fatal("httpd in the web container never answered")
			}
			time.Sleep(100 * time.Millisecond)
		}
		testPortForward(t, base, podID)
		kok("rm", "-f", webID)

		// attach to a container waiting on stdin, then follow its log until it exits.
		talk := writeFile(t, dir, "talk.yaml", fmt.Sprintf("metadata: {name: talk}\nimage: {image: %s}\n"+
			"command: [sh, -c, 'read line; echo got-$line; echo bye >&2']\nstdin: true\nstdin_once: true\nlog_path: talk.log\n", imgs.busybox))
		talkID := strings.TrimSpace(kok("create", podID, talk, pod).stdout)
		kok("start", talkID)
		if r := runBinStdin(t, "hello\n", append(base, "attach", "-i", talkID)...); r.code != 0 || r.stdout != "got-hello\n" || r.stderr != "bye\n" {
			t.Errorf("attach -i: %+v", r)
		}
		if r := kok("logs", "-f", talkID); r.stdout != "got-hello\n" || r.stderr != "bye\n" {
			t.Errorf("logs -f of an exited container: %+v", r)
		}
		kok("rm", talkID)
	}

	// Bad input against a real runtime: one line, non-zero exit.
	k("inspect", "0000000000000").failsWith(t, `container "0000000000000"`)
	k("rm", "0000000000000").failsWith(t, `container "0000000000000"`)
	k("inspectp", "0000000000000").failsWith(t, `pod sandbox "0000000000000"`)
	k("ps", "-o", "xml").failsWith(t, `unsupported output format "xml"`)
	k("runp", ctr).failsWith(t, "metadata.name and metadata.namespace are required")
	k("rm", ctrID).failsWith(t, "is running")

	// Stop and remove; containerd >= 1.7 streams the stop as an event.
	var events *eventWatch
	if tg.events {
		events = watchEvents(t, base)
	}
	if out := kok("stop", "-t", "5", ctrID).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("stop printed %q", out)
	}
	if events != nil {
		events.expect(t, ctrID, "CONTAINER_STOPPED_EVENT")
	}
	if out := kok("ps", "-q", "--state", "exited").stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("ps --state exited = %q", out)
	}
	if out := kok("rm", ctrID).stdout; strings.TrimSpace(out) != ctrID {
		t.Errorf("rm printed %q", out)
	}
	if out := kok("stopp", podID).stdout; out != "Stopped sandbox "+podID+"\n" {
		t.Errorf("stopp printed %q", out)
	}
	if out := kok("rmp", podID).stdout; out != "Removed sandbox "+podID+"\n" {
		t.Errorf("rmp printed %q", out)
	}
	if out := kok("pods", "-q").stdout; out != "" {
		t.Errorf("pods after rmp = %q", out)
	}

	// A second pod removed in one go with rmp -f.
	pod2 := writeFile(t, dir, "pod2.json", `{"metadata": {"name": "kcrictl-pod2", "namespace": "kcrictl", "uid": "u-2"}}`)
	pod2ID := nets.add(strings.TrimSpace(kok("runp", pod2).stdout))
	if out := kok("rmp", "-f", pod2ID).stdout; out != "Removed sandbox "+pod2ID+"\n" {
		t.Errorf("rmp -f printed %q", out)
	}

	if out := kok("rmi", imgs.busybox).stdout; out != "Deleted: "+imgs.busybox+"\n" {
		t.Errorf("rmi printed %q", out)
	}
	if out := kok("images", "-q", imgs.busybox).stdout; out != "" {
		t.Errorf("images after rmi = %q", out)
	}
	k("rmi", imgs.busybox).failsWith(t, "no such image")

	if r := k("runtime-config"); tg.cgroupConf == "" {
		r.failsWith(t, "Unimplemented")
	} else if r.code != 0 || r.stdout != tg.cgroupConf {
		t.Errorf("runtime-config on %s: %+v", version, r)
	}
	t.Logf("%s: whole test %v", version, time.Since(start).Round(time.Millisecond))
}

func mkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runBinStdin is runBin with stdin.
func runBinStdin(t *testing.T, stdin string, args ...string) binResult {
	t.Helper()
	cmd := exec.Command(kcrictlBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return binResult{so.String(), se.String(), code}
}

// testPortForward runs kcrictl port-forward in the background and fetches
// /passwd from the pod's httpd through it.
func testPortForward(t *testing.T, base []string, podID string) {
	t.Helper()
	cmd := exec.Command(kcrictlBin, append(append([]string{}, base...), "port-forward", podID, ":8080")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Forwarding from") {
				line <- sc.Text()
			}
		}
	}()
	var fwd string
	select {
	case fwd = <-line:
	case <-time.After(10 * time.Second):
		t.Fatalf("port-forward printed no address; stderr: %s", stderr.String())
	}
	m := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+) -> 8080`).FindStringSubmatch(fwd)
	if m == nil {
		t.Fatalf("port-forward said %q", fwd)
	}
	var body []byte
	for range 30 { // httpd may still be starting
		resp, err := http.Get("http://" + m[1] + "/passwd")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), "root:x:0:0") {
		t.Errorf("GET through port-forward = %q; stderr: %s", body, stderr.String())
	}
}

// eventWatch is a background `kcrictl events`.
type eventWatch struct {
	cmd   *exec.Cmd
	lines chan string
}

func watchEvents(t *testing.T, base []string) *eventWatch {
	t.Helper()
	cmd := exec.Command(kcrictlBin, append(append([]string{}, base...), "events", "-o", "go-template",
		"--template", "{{.containerId}} {{.containerEventType}}")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &eventWatch{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	time.Sleep(500 * time.Millisecond) // let the stream subscribe
	return w
}

func (w *eventWatch) expect(t *testing.T, id, typ string) {
	t.Helper()
	want := id + " " + typ
	timeout := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Errorf("events ended before %q; saw %q", want, seen)
				return
			}
			if l == want {
				return
			}
			seen = append(seen, l)
		case <-timeout:
			t.Errorf("no event %q within 10s; saw %q", want, seen)
			return
		}
	}
}

// removeCgroup removes a pod's cgroup parent the runtime made.
func removeCgroup(t *testing.T, rel string) {
	if err := testenv.RemoveCgroup(rel); err != nil {
		t.Error(err)
	}
}
