package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/vishvananda/netlink"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// critestSkip are the specs this host cannot pass: AppArmor and SELinux
// (neither is enabled here) and the one image pinned to a digest of
// upstream content, which cannot exist offline. Everything else runs,
// NRI included (kcrid starts with NRI on a socket of its own and critest
// gets -nri-socket) and user namespaces (cri/userns.go).
const critestSkip = `AppArmor|SELinux|public image with digest`

// TestCritest runs critest v1.37 against the real kcrid binary: the one
// $KCTR_CRITEST names, else <module>/.tools/bin/critest (`make deps`).
// Its images are built offline and served under their original names
// through a _default mirror. It prints passed/failed/skipped.
// KCTR_CRITEST_FOCUS and KCTR_CRITEST_SKIP narrow or replace the specs it
// runs; KCRID_TEST_BRIDGE and KCRID_TEST_SUBNET move its pod network.
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
	b := testimages.NewBuilder("")
	plain, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	pause, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	helper, err := b.GoProgram(critestHelper)
	if err != nil {
		t.Fatal(err)
	}
	helperData, err := os.ReadFile(helper)
	if err != nil {
		t.Fatal(err)
	}
	// critest's busybox runs pgrep and ipcs, which Debian's lacks.
	busybox := appendFiles(t, plain, func(f *testimages.FS) {
		f.Program("/usr/bin/pgrep", helperData, "/usr/bin/pkill", "/usr/bin/ipcs")
	})
	nginx := withEntrypoint(t, appendFiles(t, busybox, func(f *testimages.FS) {
		f.Program("/usr/sbin/nginx", helperData)
	}), "/usr/sbin/nginx")
	nonewprivs := withEntrypoint(t, appendFiles(t, plain, func(f *testimages.FS) {
		f.File("/usr/local/bin/nonewprivs", 0o755|fs.ModeSetuid, helperData)
	}), "/usr/local/bin/nonewprivs")
	withUser := func(user string) v1.Image {
		img, err := testimages.WithUser(busybox, user)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	web := webServer(t, busybox)
	// pause:3.9 must differ from the sandbox image (pause:3.10), or the
	// image specs count the sandbox image's tag too.
	pause39, err := mutate.Config(pause, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", Labels: map[string]string{"version": "3.9"}})
	if err != nil {
		t.Fatal(err)
	}
	predefinedGroup := predefinedGroupImage(t, busybox)
	const staging = "k8s-staging-cri-tools/"
	images := map[string]v1.Image{
		"e2e-test-images/busybox:1.29-2":                  busybox,
		"e2e-test-images/nginx:1.14-2":                    nginx,
		"e2e-test-images/nonewprivs:1.3":                  nonewprivs,
		"pause:3.9":                                       pause39,
		"e2e-test-images/httpd:2.4.39-4":                  web,
		staging + "test-image-predefined-group:latest":    predefinedGroup,
		staging + "test-image-user-uid:latest":            withUser("1002"),
		staging + "test-image-user-username:latest":       withUser("www-data"),
		staging + "test-image-user-uid-group:latest":      withUser("1003:1003"),
		staging + "test-image-user-username-group:latest": withUser("www-data:www-data"),
		staging + "test-image-latest:latest":              withUser("1"),
		staging + "test-image-tag:test":                   withUser("2"),
		staging + "test-image-tag:all":                    withUser("3"),
		staging + "test-image-1:latest":                   withUser("11"),
		staging + "test-image-2:latest":                   withUser("12"),
		staging + "test-image-3:latest":                   withUser("13"),
		staging + "test-image-tags:1":                     withUser("20"),
		staging + "test-image-tags:2":                     withUser("20"),
		staging + "test-image-tags:3":                     withUser("20"),
	}
	// critest's host-network port-forward spec fetches a page on 12003.
	images[staging+"hostnet-nginx-"+runtime.GOARCH+":latest"] = hostNetWebServer(t, web)
	confDir := t.TempDir()
	bridge := envOr("KCRID_TEST_BRIDGE", "kcridtest0")
	writeFile(t, filepath.Join(confDir, "10-kcridtest.conflist"), fmt.Sprintf(`{
  "cniVersion": "1.0.0", "name": "kcridtest",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]}`, bridge, envOr("KCRID_TEST_SUBNET", "10.231.0.0/16"), t.TempDir()))
	t.Cleanup(func() {
		if link, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(link)
		}
	})
	nriSocket := filepath.Join(t.TempDir(), "nri.sock") // critest's NRI specs connect plugins here
	p := newKcridProcWith(t, procOptions{cniConfDir: confDir, images: images, nriSocket: nriSocket})

	// The HostIpc specs leak the 1 MiB segments they make on the host.
	before := shmIDs()
	t.Cleanup(func() {
		for id := range shmIDs() {
			if !before[id] {
				_ = exec.Command("ipcrm", "-m", id).Run()
			}
		}
	})
	cmd := exec.Command(critest,
		"-runtime-endpoint", "unix://"+p.socket, "-image-endpoint", "unix://"+p.socket, "-nri-socket", nriSocket,
		"-ginkgo.skip", envOr("KCTR_CRITEST_SKIP", critestSkip), "-ginkgo.focus", os.Getenv("KCTR_CRITEST_FOCUS"), "-ginkgo.no-color")
	// KCTR_CRITEST_ARGS adds critest flags, e.g. "-websocket-exec -websocket-attach -websocket-portforward".
	cmd.Args = append(cmd.Args, strings.Fields(os.Getenv("KCTR_CRITEST_ARGS"))...)
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(os.TempDir(), "kcrid-critest-"+p.daemon.Version()+".log")
	writeFile(t, logPath, string(out))
	ran := regexp.MustCompile(`Ran \d+ of \d+ Specs`).Find(out)
	counts := regexp.MustCompile(`\d+ Passed \| \d+ Failed \| \d+ Pending \| \d+ Skipped`).Find(out)
	t.Logf("critest on containerd %s: %s: %s (full output in %s)", p.daemon.Version(), ran, counts, logPath)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "[FAIL]") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if err != nil {
		t.Errorf("critest: %v", err)
	}
}

// critestHelper stands in for nginx, pgrep, pkill, ipcs and nonewprivs.
const critestHelper = "github.com/kctr/kctr/cmd/kcrid/internal/critesthelper"

func appendFiles(t *testing.T, base v1.Image, add func(*testimages.FS)) v1.Image {
	t.Helper()
	f := testimages.NewFS()
	add(f)
	img, err := testimages.AppendFS(base, f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func withEntrypoint(t *testing.T, base v1.Image, entrypoint ...string) v1.Image {
	t.Helper()
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *cf.Config.DeepCopy()
	cfg.Entrypoint, cfg.Cmd = entrypoint, nil
	img, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// webServer is busybox serving an index page on port 80 with httpd, in
// place of the nginx image critest's networking specs fetch a page from.
func webServer(t *testing.T, busybox v1.Image) v1.Image {
	t.Helper()
	f := testimages.NewFS()
	f.Dir("/www", 0o755)
	f.File("/www/index.html", 0o644, []byte("<html>kcrid test web server</html>\n"))
	img, err := testimages.AppendFS(busybox, f)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *cf.Config.DeepCopy()
	cfg.Entrypoint = []string{"sh", "-c", "echo httpd: serving /www on port 80; exec httpd -f -p 80 -h /www"}
	cfg.Cmd = nil
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// hostNetWebServer is webServer on port 12003, like critest's
// hostnet-nginx image for the host-network port-forward spec.
func hostNetWebServer(t *testing.T, web v1.Image) v1.Image {
	t.Helper()
	cf, err := web.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := *cf.Config.DeepCopy()
	cfg.Entrypoint = []string{"sh", "-c", "echo httpd: serving /www on port 12003; exec httpd -f -p 12003 -h /www"}
	img, err := mutate.Config(web, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// predefinedGroupImage has a user default-user (1000) that /etc/group puts
// in group-defined-in-image (50000), and runs as it, like critest's
// test-image-predefined-group.
func predefinedGroupImage(t *testing.T, busybox v1.Image) v1.Image {
	t.Helper()
	f := testimages.NewFS()
	f.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"+
		"www-data:x:33:33:www-data:/var/www:/bin/sh\n"+
		"default-user:x:1000:1000:default:/home/default-user:/bin/sh\n"))
	f.File("/etc/group", 0o644, []byte("root:x:0:\nwww-data:x:33:\ndefault-user:x:1000:\n"+
		"group-defined-in-image:x:50000:default-user\n"))
	img, err := testimages.AppendFS(busybox, f)
	if err != nil {
		t.Fatal(err)
	}
	img, err = testimages.WithUser(img, "1000")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// shmIDs are the host's SysV shared memory segments of 1 MiB.
func shmIDs() map[string]bool {
	ids := map[string]bool{}
	data, _ := os.ReadFile("/proc/sysvipc/shm")
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[3] == "1048576" {
			ids[f[1]] = true
		}
	}
	return ids
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
