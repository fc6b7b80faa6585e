package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// The end-to-end tests run the built kctr binary, as a user would, against
// a private containerd.
var (
	kctrBinary string
	dataRoot   string
	daemon     *testenv.Containerd
	setupErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "kctr-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	setupErr = fmt.Errorf("end-to-end tests need root and no -short")
	if !testing.Short() && os.Geteuid() == 0 {
		kctrBinary = filepath.Join(dir, "kctr")
		dataRoot = filepath.Join(dir, "data")
		// Static, as `make build` makes it, so that run --init works; the
		// log writer beside it, as installed.
		build := exec.Command("go", "build", "-o", dir+"/", ".", "../kctr-logwriter")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("build kctr: %v\n%s", err, out)
		} else {
			daemon, setupErr = testenv.StartContainerd(context.Background(), testenv.ContainerdOptions{})
		}
	}
	code := m.Run()
	if daemon != nil {
		if err := daemon.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		// Containers a failed test left behind were dropped by Stop without
		// a CNI DEL: take their rules, namespaces and bridge away too.
		_ = testenv.RemoveNetworkRules("kctr-" + testBridge)
		if err := testenv.RemoveBridge(testBridge, "kctr-"+testBridge); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		_ = testenv.PruneEmptyCNIChains()
		if err := testenv.UnmountAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// Test containers get a bridge and subnet of their own, never the
// default kctr0 a user of this machine may have.
const (
	testBridge = "kctrtest0"
	testSubnet = "10.233.0.0/24"
)

func globalArgs(namespace string) []string {
	return []string{
		"--address", daemon.Address(), "-n", namespace, "--data-root", dataRoot,
		"--cni-netconfpath", filepath.Join(dataRoot, "cni"), "--bridge-name", testBridge, "--bridge-subnet", testSubnet,
		"--netns-dir", filepath.Join(dataRoot, "netns"),
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// kctr runs the binary in the test's own namespace.
func kctr(t *testing.T, namespace string, args ...string) result {
	t.Helper()
	return kctrStdin(t, namespace, "", args...)
}

// kctrStdin is kctr with input on stdin.
func kctrStdin(t *testing.T, namespace, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kctrBinary, append(globalArgs(namespace), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

func setup(t *testing.T) (namespace, host string) {
	t.Helper()
	testenv.Require(t, setupErr == nil, "%v", setupErr)
	host = testenv.NewRegistry(t, testenv.RegistryOptions{})
	img, err := testimages.NewBuilder("").Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(context.Background(), img, host+"/library/busybox:1"); err != nil {
		t.Fatal(err)
	}
	return testenv.Namespace(t), host
}

func TestPullImagesRun(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"

	pull := kctr(t, ns, "pull", ref)
	if pull.code != 0 {
		t.Fatalf("pull exited %d: %s", pull.code, pull.stderr)
	}
	if !strings.Contains(pull.stderr, "layer") || !strings.Contains(pull.stderr, "done") {
		t.Errorf("pull showed no layer progress:\n%s", pull.stderr)
	}
	if !strings.HasSuffix(pull.stdout, ref+"\n") || !strings.Contains(pull.stdout, "Digest: sha256:") {
		t.Errorf("pull output %q", pull.stdout)
	}

	images := kctr(t, ns, "images")
	lines := strings.Split(strings.TrimSpace(images.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.HasPrefix(lines[1], host+"/library/busybox") || !strings.Contains(lines[1], " 1 ") {
		t.Fatalf("images output:\n%s", images.stdout)
	}
	quiet := kctr(t, ns, "images", "-q")
	if len(strings.TrimSpace(quiet.stdout)) != 12 {
		t.Errorf("images -q = %q, want one 12-digit ID", quiet.stdout)
	}
	templ := kctr(t, ns, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if strings.TrimSpace(templ.stdout) != ref {
		t.Errorf("images --format = %q", templ.stdout)
	}

	run := kctr(t, ns, "run", "--rm", ref, "sh", "-c", "echo hello; exit 7")
	if run.code != 7 || run.stdout != "hello\n" {
		t.Fatalf("run: code %d stdout %q stderr %q", run.code, run.stdout, run.stderr)
	}
	named := kctr(t, ns, "run", "--rm", "--name", "web", "-e", "A=b", ref, "sh", "-c", "echo $A")
	if named.code != 0 || named.stdout != "b\n" {
		t.Fatalf("run -e: code %d stdout %q stderr %q", named.code, named.stdout, named.stderr)
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	ns, host := setup(t)
	run := kctr(t, ns, "run", "--rm", host+"/library/busybox:1", "true")
	if run.code != 0 {
		t.Fatalf("run exited %d: %s", run.code, run.stderr)
	}
	if !strings.Contains(run.stderr, "layer") {
		t.Errorf("run did not show the pull:\n%s", run.stderr)
	}
	never := kctr(t, ns, "run", "--rm", "--pull", "never", host+"/library/busybox:2", "true")
	if never.code == 0 || !strings.Contains(never.stderr, "not present") {
		t.Fatalf("--pull never of a missing image: code %d stderr %q", never.code, never.stderr)
	}
}

func TestErrorsAreOneClearLine(t *testing.T) {
	ns, host := setup(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"malformed reference", []string{"pull", "Bad::Ref"}, `invalid image reference "Bad::Ref"`},
		{"unknown image", []string{"pull", host + "/no/such:tag"}, "not found in registry " + host},
		{"pull without image", []string{"pull"}, "want exactly one IMAGE"},
		{"bad pull policy", []string{"run", "--rm", "--pull", "sometimes", host + "/library/busybox:1"}, `invalid pull policy "sometimes"`},
		{"bad label", []string{"run", "--rm", "--label", "=x", host + "/library/busybox:1"}, `--label "=x"`},
		{"bad name", []string{"run", "--rm", "--name", "no spaces", host + "/library/busybox:1", "true"}, `invalid container name "no spaces"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kctr(t, ns, tt.args...)
			if r.code == 0 {
				t.Fatalf("exit code 0, stdout %q", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "kctr: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("stderr %q, want a kctr: line containing %q", r.stderr, tt.want)
			}
		})
	}
}

func TestNoDaemon(t *testing.T) {
	testenv.Require(t, kctrBinary != "", "%v", setupErr)
	cmd := exec.Command(kctrBinary, "--address", "/nonexistent/containerd.sock", "images")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot reach containerd at /nonexistent/containerd.sock") {
		t.Fatalf("err %v output %q", err, out)
	}
}

func runOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

// TestCompletionCandidates asks the binary what the completion scripts ask.
func TestCompletionCandidates(t *testing.T) {
	testenv.Require(t, kctrBinary != "", "%v", setupErr)
	out, err := exec.Command(kctrBinary, "run", "-", "--generate-bash-completion").Output()
	if err != nil || !strings.Contains(string(out), "--publish") {
		t.Fatalf("flag candidates of run: %v %q", err, out)
	}
}
