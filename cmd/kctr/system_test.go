package main

import (
	"context"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	ctrimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/opencontainers/go-digest"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/internal/testimages"
	"github.com/kctr/kctr/system"
)

func TestInfoAndVersion(t *testing.T) {
	ns, _ := setup(t)
	none := cliOptions{}
	info := ok(t, kx(t, ns, none, "info"), "info")
	for _, want := range []string{
		"Server Version: " + daemon.DaemonVersion(),
		"Revision:",
		"Address: " + daemon.Address(),
		"Namespace: " + ns,
		"Snapshotter: overlayfs (ok)",
		"Plugins:",
		"Cgroup Driver: cgroupfs",
		"Cgroup Version: " + system.CgroupVersion(),
	} {
		if !strings.Contains(squeeze(info.stdout), want) {
			t.Errorf("info lacks %q:\n%s", want, info.stdout)
		}
	}
	format := ok(t, kx(t, ns, none, "system", "info", "--format", "{{.Server.Version}} {{.Namespace}}"), "info --format")
	if format.stdout != daemon.DaemonVersion()+" "+ns+"\n" {
		t.Errorf("info --format = %q", format.stdout)
	}

	v := ok(t, kx(t, ns, none, "version"), "version")
	for _, want := range []string{"Client:\nVersion:", "Go version:", "Server:\ncontainerd:\nVersion: " + daemon.DaemonVersion(), "GitCommit:"} {
		if !strings.Contains(squeeze(v.stdout), want) {
			t.Errorf("version lacks %q:\n%s", want, v.stdout)
		}
	}
	jsonV := ok(t, kx(t, ns, none, "version", "--format", "{{.Server.Version}}"), "version --format")
	if jsonV.stdout != daemon.DaemonVersion()+"\n" {
		t.Errorf("version --format = %q", jsonV.stdout)
	}
}

// squeeze trims each line and collapses its runs of blanks, so tests do not
// depend on column widths.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestVersionWithoutDaemon(t *testing.T) {
	ns, _ := setup(t)
	r := kx(t, ns, cliOptions{}, "--address", "/nonexistent/containerd.sock", "version")
	if r.code == 0 || !strings.Contains(r.stdout, "Client:") || strings.Contains(r.stdout, "Server:") {
		t.Fatalf("version without daemon: code %d stdout %q", r.code, r.stdout)
	}
	failsWith(t, r, "version without daemon", "cannot reach containerd")
}

// TestSystemPrune makes containers with the Go client: a stopped kctr one
// on an image only it uses, and a stopped CRI one that prune must leave to
// the kubelet.
func TestSystemPrune(t *testing.T) {
	ns, host := setup(t)
	none := cliOptions{}
	busybox := host + "/library/busybox:1"
	multi := host + "/library/multi:1"
	img, err := testimages.MultiLayer(2, 64<<10, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := testimages.Push(context.Background(), img, multi); err != nil {
		t.Fatal(err)
	}
	ok(t, kx(t, ns, none, "pull", "-q", busybox), "pull busybox")
	ok(t, kx(t, ns, none, "pull", "-q", multi), "pull multi")

	ctx := namespaces.WithNamespace(context.Background(), ns)
	client, err := daemon.Client(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	newContainer := func(id, ref string, labels map[string]string) {
		t.Helper()
		image, err := client.GetImage(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.NewContainer(ctx, id,
			containerd.WithImage(image),
			containerd.WithNewSnapshot(id, image),
			containerd.WithNewSpec(),
			containerd.WithContainerLabels(labels),
		); err != nil {
			t.Fatal(err)
		}
	}
	// A record whose name is no reference (as `ctr import` can leave) is
	// dangling: plain prune removes it.
	multiRecord, err := client.ImageService().Get(ctx, multi)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ImageService().Create(ctx, ctrimages.Image{Name: "Dangling-Import", Target: multiRecord.Target}); err != nil {
		t.Fatal(err)
	}
	newContainer("stopped-kctr", multi, map[string]string{containers.LabelName: "old"})
	newContainer("stopped-cri", busybox, map[string]string{"io.cri-containerd.kind": "container"})

	refused := kx(t, ns, none, "system", "prune")
	failsWith(t, refused, "prune without -f", "not a terminal", "--force")

	pruned := ok(t, kx(t, ns, none, "system", "prune", "-f"), "system prune -f")
	if !strings.HasPrefix(pruned.stdout, "Deleted Containers:\nstopped-kctr\n\n") || strings.Contains(pruned.stdout, "stopped-cri") {
		t.Errorf("prune -f output:\n%s", pruned.stdout)
	}
	if !strings.Contains(pruned.stdout, "Deleted Images:\nuntagged: Dangling-Import\n\n") || !strings.Contains(pruned.stdout, "Total reclaimed space: ") {
		t.Errorf("prune -f without -a output:\n%s", pruned.stdout)
	}

	all := ok(t, kx(t, ns, none, "system", "prune", "-a", "-f"), "system prune -a -f")
	t.Logf("system prune -f:\n%s\nsystem prune -a -f:\n%s", pruned.stdout, all.stdout)
	want := "Deleted Images:\nuntagged: " + multi + "\ndeleted: sha256:"
	if !strings.HasPrefix(all.stdout, want) || strings.Contains(all.stdout, busybox) || strings.Contains(all.stdout, "0 B") {
		t.Errorf("prune -a -f output:\n%s\nwant it to start with %q, keep %s and reclaim space", all.stdout, want, busybox)
	}
	left := ok(t, kx(t, ns, none, "images", "--format", "{{.Repository}}:{{.Tag}}"), "images")
	if left.stdout != busybox+"\n" {
		t.Errorf("images after prune -a: %q, want only %s", left.stdout, busybox)
	}
	if _, err := client.LoadContainer(ctx, "stopped-cri"); err != nil {
		t.Errorf("prune removed the CRI container: %v", err)
	}
	again := ok(t, kx(t, ns, none, "image", "prune", "-a", "-f"), "image prune with nothing to do")
	if again.stdout != "Total reclaimed space: 0 B\n" {
		t.Errorf("image prune with nothing to do printed %q", again.stdout)
	}
}

// TestPruneAsksOnATerminal answers prune's question on a pseudo-terminal:
// "n" keeps everything, "y" prunes.
func TestPruneAsksOnATerminal(t *testing.T) {
	ns, host := setup(t)
	ref := host + "/library/busybox:1"
	ok(t, kx(t, ns, cliOptions{}, "pull", "-q", ref), "pull")
	for _, answer := range []string{"n", "y"} {
		control, terminal := openPTY(t)
		if _, err := control.WriteString(answer + "\n"); err != nil {
			t.Fatal(err)
		}
		r := kx(t, ns, cliOptions{stdinFile: terminal}, "system", "prune", "-a")
		control.Close()
		terminal.Close()
		if !strings.Contains(r.stderr, "WARNING! This will remove") || !strings.Contains(r.stderr, "[y/N]") {
			t.Errorf("answer %s: no question on stderr: %q", answer, r.stderr)
		}
		images := ok(t, kx(t, ns, cliOptions{}, "images", "-q"), "images").stdout
		switch answer {
		case "n":
			if r.code == 0 || images == "" {
				t.Fatalf("answer n: exit %d, images %q; want a refusal and the image kept", r.code, images)
			}
		case "y":
			if r.code != 0 || images != "" || !strings.Contains(r.stdout, "untagged: "+ref) {
				t.Fatalf("answer y: exit %d, images %q, stdout %q", r.code, images, r.stdout)
			}
		}
	}
}

func TestPrintPruneReport(t *testing.T) {
	var out strings.Builder
	printPruneReport(&out, &system.PruneReport{
		Containers: []string{"c1"},
		Untagged:   []string{"docker.io/library/busybox:latest"},
		Deleted:    []digest.Digest{"sha256:" + zeros},
		Reclaimed:  2048,
	}, true)
	want := "Deleted Containers:\nc1\n\nDeleted Images:\nuntagged: busybox:latest\ndeleted: sha256:" + zeros + "\n\nTotal reclaimed space: 2.0 KiB\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestAskYesNo(t *testing.T) {
	for answer, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "n\n": false, "\n": false, "": false, "maybe\n": false} {
		var prompt strings.Builder
		if got := askYesNo(strings.NewReader(answer), &prompt, "Sure?"); got != want {
			t.Errorf("askYesNo(%q) = %v", answer, got)
		}
		if prompt.String() != "Sure? [y/N] " {
			t.Errorf("prompt %q", prompt.String())
		}
	}
}
