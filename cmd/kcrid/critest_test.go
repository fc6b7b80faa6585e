package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/kctr/kctr/internal/critestenv"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// TestCritest runs critest v1.37 against the real kcrid binary: the one
// $KCTR_CRITEST names, else <module>/.tools/bin/critest (`make deps`).
// Its images are built offline and served under their original names
// through a _default mirror (internal/critestenv). kcrid starts with NRI on
// a socket of its own and critest gets -nri-socket. It prints
// passed/failed/skipped. KCTR_CRITEST_FOCUS and KCTR_CRITEST_SKIP narrow
// or replace the specs it runs (default: critestenv.Skip);
// KCRID_TEST_BRIDGE and KCRID_TEST_SUBNET move its pod network.
func TestCritest(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	critest := os.Getenv("KCTR_CRITEST")
	if critest == "" {
		if root, err := testenv.ModuleRoot(); err == nil && fileExists(filepath.Join(root, ".tools", "bin", "critest")) {
			critest = filepath.Join(root, ".tools", "bin", "critest")
		}
	}
	testenv.Require(t, critest != "", "critest not found (run `make deps` or set KCTR_CRITEST)")
	images, err := critestenv.Images(testimages.NewBuilder(""))
	if err != nil {
		t.Fatal(err)
	}
	confDir := t.TempDir()
	bridge := envOr("KCRID_TEST_BRIDGE", "kcridtest0")
	writeFile(t, filepath.Join(confDir, "10-kcridtest.conflist"),
		critestenv.Conflist("kcridtest", bridge, envOr("KCRID_TEST_SUBNET", "10.231.0.0/16"), t.TempDir()))
	t.Cleanup(func() {
		if link, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(link)
		}
	})
	nriSocket := filepath.Join(t.TempDir(), "nri.sock") // critest's NRI specs connect plugins here
	p := newKcridProcWith(t, procOptions{cniConfDir: confDir, images: images, nriSocket: nriSocket})

	t.Cleanup(critestenv.SnapshotSharedMemory().RemoveNew)
	cmd := critestenv.Command(critest, critestenv.Args{
		Endpoint: "unix://" + p.socket, NRISocket: nriSocket,
		Skip: envOr("KCTR_CRITEST_SKIP", critestenv.Skip), Focus: os.Getenv("KCTR_CRITEST_FOCUS"),
		// KCTR_CRITEST_ARGS adds critest flags, e.g. "-websocket-exec -websocket-attach -websocket-portforward".
		Extra: strings.Fields(os.Getenv("KCTR_CRITEST_ARGS")),
	})
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(os.TempDir(), "kcrid-critest-"+p.daemon.Version()+".log")
	writeFile(t, logPath, string(out))
	summary, _ := critestenv.ParseSummary(out) // a missing summary shows as empty text and a critest error
	t.Logf("critest on containerd %s: %s: %s (full output in %s)", p.daemon.Version(), summary.RanText, summary.CountsText, logPath)
	for _, line := range summary.Failures {
		t.Log(line)
	}
	if err != nil {
		t.Errorf("critest: %v", err)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
