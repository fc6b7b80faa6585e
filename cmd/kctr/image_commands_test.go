package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/images"
)

// cliOptions are what a call of kx needs beyond its arguments.
type cliOptions struct {
	stdin string
	// stdinFile, if set, is stdin instead (a terminal, say).
	stdinFile *os.File
	// dockerConfig is $DOCKER_CONFIG; empty means a fresh temp dir.
	dockerConfig string
	// hostsDir is passed as --hosts-dir when set.
	hostsDir string
}

var (
	wiredOnce sync.Once
	wired     bool
)

// ourCommandsWired reports whether the built kctr already has the image,
// namespace, login and system commands (main.go wires them).
func ourCommandsWired() bool {
	wiredOnce.Do(func() {
		out, err := exec.Command(kctrBinary, "namespace", "--help").CombinedOutput()
		wired = err == nil && strings.Contains(string(out), "create")
	})
	return wired
}

// kx runs kctr with the commands of this file group: the built binary
// once main.go has them, the same cli.App in process until then. Both get
// the test daemon and the namespace ns.
func kx(t *testing.T, ns string, o cliOptions, args ...string) result {
	t.Helper()
	if o.dockerConfig == "" {
		o.dockerConfig = t.TempDir()
	}
	global := globalArgs(ns)
	if o.hostsDir != "" {
		global = append(global, "--hosts-dir", o.hostsDir)
	}
	args = append(global, args...)
	if ourCommandsWired() {
		cmd := exec.Command(kctrBinary, args...)
		cmd.Stdin = strings.NewReader(o.stdin)
		if o.stdinFile != nil {
			cmd.Stdin = o.stdinFile
		}
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+o.dockerConfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
	}
	t.Setenv("DOCKER_CONFIG", o.dockerConfig)
	app := newApp()
	have := map[string]bool{}
	for _, c := range app.Commands {
		have[c.Name] = true
	}
	ours := append(append(append(imageCommands(), namespaceCommand()), loginCommands()...), systemCommands()...)
	for _, c := range ours {
		if !have[c.Name] {
			app.Commands = append(app.Commands, c)
		}
	}
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter, app.Reader = &stdout, &stderr, strings.NewReader(o.stdin)
	if o.stdinFile != nil {
		app.Reader = o.stdinFile
	}
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(append([]string{"kctr"}, args...))
	code := 0
	if err != nil {
		code = 1
		msg := err.Error()
		var exitErr cli.ExitCoder
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		}
		if msg != "" {
			fmt.Fprintf(&stderr, "kctr: %s\n", msg)
		}
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ensureNamespace makes sure ns exists, whether or not setup made it.
func ensureNamespace(t *testing.T, ns string) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	client, err := daemon.Client(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.NamespaceService().Create(ctx, ns, nil); err != nil && !errdefs.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// ok fails the test unless r exited 0.
func ok(t *testing.T, r result, what string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
	return r
}

// failsWith checks for a non-zero exit whose last stderr line is one
// "kctr: " line holding every part of want.
func failsWith(t *testing.T, r result, what string, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("%s: exit 0, stdout %q", what, r.stdout)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	for _, w := range want {
		if !strings.HasPrefix(last, "kctr: ") || !strings.Contains(last, w) {
			t.Fatalf("%s: stderr %q, want a kctr: line containing %q", what, r.stderr, w)
		}
	}
}

func TestImagePushTagRmiSaveLoad(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	copyRef := host + "/library/copy:2"
	none := cliOptions{}
	ok(t, kx(t, ns, none, "pull", "-q", ref), "pull")

	ok(t, kx(t, ns, none, "tag", ref, copyRef), "tag")
	push := ok(t, kx(t, ns, none, "push", copyRef), "push")
	if !strings.HasPrefix(push.stdout, "The push refers to repository ["+host+"/library/copy]\n2: digest: sha256:") || !strings.Contains(push.stdout, " size: ") {
		t.Errorf("push output %q", push.stdout)
	}

	inspect := ok(t, kx(t, ns, none, "image", "inspect", ref), "image inspect")
	var got []imageInspect
	if err := json.Unmarshal([]byte(inspect.stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("image inspect output is not a one-element JSON array (%v):\n%s", err, inspect.stdout)
	}
	img := got[0]
	if !strings.HasPrefix(img.Id, "sha256:") || len(img.Id) != 71 {
		t.Errorf("Id %q", img.Id)
	}
	if strings.Join(img.RepoTags, ",") != ref+","+copyRef {
		t.Errorf("RepoTags %v, want both names", img.RepoTags)
	}
	if len(img.RepoDigests) != 2 || !strings.HasPrefix(img.RepoDigests[0], host+"/library/busybox@sha256:") && !strings.HasPrefix(img.RepoDigests[0], host+"/library/copy@sha256:") {
		t.Errorf("RepoDigests %v", img.RepoDigests)
	}
	if img.Os != "linux" || img.Architecture != runtime.GOARCH || img.Size <= 0 {
		t.Errorf("Os %q Architecture %q Size %d", img.Os, img.Architecture, img.Size)
	}
	if len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "sh" || len(img.Config.Env) == 0 {
		t.Errorf("Config %+v", img.Config)
	}
	if img.RootFS.Type != "layers" || len(img.RootFS.Layers) == 0 || !strings.HasPrefix(img.RootFS.Layers[0], "sha256:") {
		t.Errorf("RootFS %+v", img.RootFS)
	}
	format := ok(t, kx(t, ns, none, "image", "inspect", "-f", "{{.Os}} {{json .Config.Cmd}}", ref), "image inspect -f")
	if format.stdout != "linux [\"sh\"]\n" {
		t.Errorf("image inspect -f = %q", format.stdout)
	}

	// One name of two goes: untagged, the image stays.
	rmi := ok(t, kx(t, ns, none, "rmi", copyRef), "rmi")
	if rmi.stdout != "Untagged: "+copyRef+"\n" {
		t.Errorf("rmi of one of two names printed %q", rmi.stdout)
	}
	// The pushed copy comes back from the registry.
	ok(t, kx(t, ns, none, "image", "pull", "-q", copyRef), "pull the pushed image")

	archive := filepath.Join(t.TempDir(), "images.tar")
	ok(t, kx(t, ns, none, "save", "-o", archive, ref, copyRef), "save")
	if st, err := os.Stat(archive); err != nil || st.Size() == 0 {
		t.Fatalf("save wrote no archive: %v", err)
	}

	// By ID with -f: both names go and the image is deleted.
	id := strings.TrimPrefix(img.Id, "sha256:")[:12]
	rmAll := ok(t, kx(t, ns, none, "image", "rm", "-f", id), "rmi -f ID")
	want := "Untagged: " + ref + "\nUntagged: " + copyRef + "\nDeleted: " + img.Id + "\n"
	if rmAll.stdout != want {
		t.Errorf("rmi -f ID printed %q, want %q", rmAll.stdout, want)
	}
	if left := ok(t, kx(t, ns, none, "images", "-q"), "images").stdout; left != "" {
		t.Fatalf("images left after rmi: %q", left)
	}

	load := ok(t, kx(t, ns, none, "load", "-i", archive), "load -i")
	for _, name := range []string{ref, copyRef} {
		if !strings.Contains(load.stdout, "Loaded image: "+name+"\n") {
			t.Errorf("load output %q lacks %s", load.stdout, name)
		}
	}
	ls := ok(t, kx(t, ns, none, "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"), "image ls")
	if want := ref + " " + id + "\n" + copyRef + " " + id + "\n"; ls.stdout != want {
		t.Errorf("image ls after load = %q, want %q", ls.stdout, want)
	}

	// load from stdin, into another namespace.
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	other := ns + "-stdin"
	stdinLoad := ok(t, kx(t, other, cliOptions{stdin: string(data)}, "load"), "load from stdin")
	if !strings.Contains(stdinLoad.stdout, "Loaded image: "+ref) {
		t.Errorf("load from stdin printed %q", stdinLoad.stdout)
	}
	ok(t, kx(t, other, none, "rmi", "-f", id), "clean the stdin namespace")
}

func TestImageCommandErrors(t *testing.T) {
	ns, host := setup(t)
	// Commands that only read refuse a namespace that does not exist.
	ensureNamespace(t, ns)
	missing := host + "/library/nothing:1"
	failedSave := filepath.Join(t.TempDir(), "x.tar")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"rmi unknown", []string{"rmi", missing}, []string{missing, "not found"}},
		{"tag unknown", []string{"tag", missing, host + "/x:1"}, []string{missing}},
		{"tag bad source", []string{"tag", "Bad::Ref", host + "/x:1"}, []string{"Bad::Ref"}},
		{"push unknown", []string{"push", missing}, []string{missing}},
		{"inspect unknown", []string{"image", "inspect", missing}, []string{missing, "not found"}},
		{"save unknown", []string{"save", "-o", failedSave, missing}, []string{missing}},
		{"save bad format", []string{"save", "--format", "zip", "-o", "x.tar", missing}, []string{`--format "zip"`}},
		{"load missing file", []string{"load", "-i", "/nonexistent/images.tar"}, []string{"/nonexistent/images.tar"}},
		{"load garbage", []string{"load"}, []string{"load"}},
		{"tag one argument", []string{"tag", missing}, []string{"want SOURCE and TARGET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failsWith(t, kx(t, ns, cliOptions{stdin: "not a tarball"}, tt.args...), strings.Join(tt.args, " "), tt.want...)
		})
	}
	if entries, _ := os.ReadDir(filepath.Dir(failedSave)); len(entries) != 0 {
		t.Errorf("a failed save left %v", entries)
	}
}

func TestParseSaveFormat(t *testing.T) {
	for format, ociOnly := range map[string]bool{"": false, "docker-archive": false, "oci": true, "oci-archive": true} {
		opts, err := parseSaveFormat(format)
		if err != nil || opts.OCIOnly != ociOnly {
			t.Errorf("parseSaveFormat(%q) = %+v, %v", format, opts, err)
		}
	}
	if _, err := parseSaveFormat("tar.gz"); err == nil {
		t.Error("parseSaveFormat accepted tar.gz")
	}
}

func TestWriteFileAtomicallyLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.tar")
	err := writeFileAtomically(path, func(w io.Writer) error {
		fmt.Fprint(w, "partial")
		return errors.New("export failed")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v behind", entries)
	}
}

func TestFamiliarImageName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:latest":  "busybox:latest",
		"127.0.0.1:5000/app:1":              "127.0.0.1:5000/app:1",
		"docker.io/foo/bar@sha256:" + zeros: "foo/bar@sha256:" + zeros,
		"not a name":                        "not a name",
	} {
		if got := familiarImageName(in); got != want {
			t.Errorf("familiarImageName(%q) = %q, want %q", in, got, want)
		}
	}
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

func TestNewImageInspectGroupsNames(t *testing.T) {
	d := &images.Details{Image: &images.Image{ID: "sha256:" + zeros}}
	d.Names = []*images.Image{
		{Name: "docker.io/library/busybox:latest"},
		{Name: "docker.io/library/busybox@sha256:" + zeros},
	}
	for _, n := range d.Names {
		n.Target.Digest = "sha256:" + zeros
	}
	got := newImageInspect(d)
	if strings.Join(got.RepoTags, ",") != "busybox:latest" {
		t.Errorf("RepoTags %v", got.RepoTags)
	}
	if strings.Join(got.RepoDigests, ",") != "busybox@sha256:"+zeros {
		t.Errorf("RepoDigests %v (want one, deduplicated)", got.RepoDigests)
	}
	data, _ := json.Marshal(got)
	for _, field := range []string{`"Id":`, `"RepoTags":`, `"Config":`, `"RootFS":`, `"Layers":[]`} {
		if !bytes.Contains(data, []byte(field)) {
			t.Errorf("JSON lacks %s: %s", field, data)
		}
	}
}
