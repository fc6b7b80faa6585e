package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kctr/kctr/ctrnamespaces"
	"github.com/kctr/kctr/internal/testenv"
)

func TestNamespaceCommands(t *testing.T) {
	ns, host := setup(t)
	none := cliOptions{}
	created := testenv.Namespace(t)

	ok(t, kx(t, ns, none, "namespace", "create", "--label", "team=infra", "--label", "tier=dev", created), "namespace create")
	failsWith(t, kx(t, ns, none, "ns", "create", created), "create twice", created, "already exists")
	failsWith(t, kx(t, ns, none, "ns", "create", "Bad Name"), "create invalid", "Bad Name")

	ls := ok(t, kx(t, ns, none, "namespace", "ls"), "namespace ls")
	lines := strings.Split(strings.TrimSpace(ls.stdout), "\n")
	if !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "LABELS") {
		t.Fatalf("ls header %q", lines[0])
	}
	found := false
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 2 && f[0] == created && f[1] == "team=infra,tier=dev" {
			found = true
		}
	}
	if !found {
		t.Fatalf("ls does not show %s with its labels:\n%s", created, ls.stdout)
	}
	quiet := ok(t, kx(t, ns, none, "ns", "ls", "-q"), "ns ls -q")
	if !strings.Contains("\n"+quiet.stdout, "\n"+created+"\n") || strings.Contains(quiet.stdout, "NAME") {
		t.Fatalf("ls -q = %q", quiet.stdout)
	}

	inspect := ok(t, kx(t, ns, none, "namespace", "inspect", created), "namespace inspect")
	var got []ctrnamespaces.Namespace
	if err := json.Unmarshal([]byte(inspect.stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect output (%v):\n%s", err, inspect.stdout)
	}
	if got[0].Name != created || got[0].Labels["team"] != "infra" || got[0].Labels["tier"] != "dev" {
		t.Fatalf("inspect = %+v", got[0])
	}
	ok(t, kx(t, ns, none, "namespace", "update", "-l", "tier=", "-l", "owner=me", created), "namespace update")
	labels := ok(t, kx(t, ns, none, "namespace", "inspect", "-f", "{{json .Labels}}", created), "inspect -f")
	if labels.stdout != `{"owner":"me","team":"infra"}`+"\n" {
		t.Errorf("labels after update = %q", labels.stdout)
	}

	// A namespace with an image in it is refused, naming what is left.
	ok(t, kx(t, created, none, "pull", "-q", host+"/library/busybox:1"), "pull into the namespace")
	failsWith(t, kx(t, ns, none, "namespace", "rm", created), "rm non-empty",
		`namespace "`+created+`"`, "1 image", "content blobs", "(overlayfs)", "remove them first")
	ok(t, kx(t, created, none, "rmi", host+"/library/busybox:1"), "empty the namespace")

	rm := ok(t, kx(t, ns, none, "namespace", "rm", created), "namespace rm")
	if rm.stdout != created+"\n" {
		t.Errorf("rm printed %q", rm.stdout)
	}
	if after := ok(t, kx(t, ns, none, "ns", "ls", "-q"), "ls after rm"); strings.Contains("\n"+after.stdout, "\n"+created+"\n") {
		t.Fatalf("%s still listed after rm:\n%s", created, after.stdout)
	}
	failsWith(t, kx(t, ns, none, "namespace", "rm", created), "rm unknown", created, "no such namespace")
	failsWith(t, kx(t, ns, none, "namespace", "inspect", created), "inspect unknown", created, "no such namespace")
}

func TestNamespaceLabels(t *testing.T) {
	if got := namespaceLabels(map[string]string{"b": "2", "a": "1"}); got != "a=1,b=2" {
		t.Errorf("namespaceLabels = %q", got)
	}
	if got := namespaceLabels(nil); got != "" {
		t.Errorf("namespaceLabels(nil) = %q", got)
	}
}
