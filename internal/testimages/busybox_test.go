package testimages

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// busyboxIsDynamic reports whether the builder packages a dynamically linked busybox,
// i.e. the download of Debian's package worked (or an override points to one).
func busyboxIsDynamic(t *testing.T, b *Builder) bool {
	t.Helper()
	bin, err := b.busyboxBinary()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	return slices.ContainsFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
}

func TestBusyboxDeterministic(t *testing.T) {
	b := testBuilder(t)
	img1, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	img2, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := digestOf(t, img1), digestOf(t, img2); d1 != d2 {
		t.Fatalf("two builds differ: %s vs %s", d1, d2)
	}
}

func TestBusyboxImage(t *testing.T) {
	b := testBuilder(t)
	img, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config media type %s", m.Config.MediaType)
	}
	cf := configOf(t, img)
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(epoch) {
		t.Errorf("platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"sh"}) || !slices.Equal(cf.Config.Env, []string{defaultPath}) {
		t.Errorf("config Cmd %q Env %q", cf.Config.Cmd, cf.Config.Env)
	}

	entries := byName(layerEntries(t, onlyLayer(t, img)))
	if e, ok := entries["bin/busybox"]; !ok || e.hdr.Typeflag != tar.TypeReg || e.hdr.Mode != 0o755 {
		t.Fatalf("bin/busybox missing or not a 0755 regular file")
	}
	for _, applet := range []string{"sh", "ls", "cat", "echo", "sleep", "id", "hostname", "wget", "nc", "top", "httpd"} {
		e, ok := entries["bin/"+applet]
		if !ok {
			t.Errorf("applet %s missing", applet)
			continue
		}
		if e.hdr.Typeflag != tar.TypeLink || e.hdr.Linkname != "bin/busybox" {
			t.Errorf("bin/%s: type %q link %q, want a hard link to bin/busybox", applet, e.hdr.Typeflag, e.hdr.Linkname)
		}
	}
	for _, d := range []string{"bin", "usr/sbin", "etc", "root", "home", "var/run", "var/www", "proc", "sys", "dev", "tmp"} {
		if e, ok := entries[d]; !ok || e.hdr.Typeflag != tar.TypeDir {
			t.Errorf("directory /%s missing", d)
		}
	}
	if got := entries["tmp"].hdr.Mode; got != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", got)
	}
	passwd := string(entries["etc/passwd"].data)
	for _, u := range []string{"root:x:0:0:", "www-data:x:33:33:", "nobody:x:65534:65534:"} {
		if !strings.Contains(passwd, "\n"+u) && !strings.HasPrefix(passwd, u) {
			t.Errorf("/etc/passwd lacks %q", u)
		}
	}
	if !strings.Contains(string(entries["etc/group"].data), "\nusers:x:100:\n") {
		t.Error("/etc/group lacks users")
	}

	if !busyboxIsDynamic(t, b) {
		t.Log("static busybox fallback in use: no libraries expected")
		return
	}
	bin, err := b.busyboxBinary()
	if err != nil {
		t.Fatal(err)
	}
	libs, err := sharedLibraries(t.Context(), bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) < 2 {
		t.Fatalf("ldd found %q, want at least libc and the loader", libs)
	}
	for _, lib := range libs {
		e, ok := entries[strings.TrimPrefix(lib, "/")]
		if !ok || e.hdr.Typeflag != tar.TypeReg || len(e.data) == 0 {
			t.Errorf("library %s missing or not a regular file", lib)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestBusyboxRuns unpacks the image and runs its shell in a chroot, proving that the
// binary, the libraries and the hard links work together.
func TestBusyboxRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skip("no chroot command")
	}
	b := testBuilder(t)
	img, err := b.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rc, err := onlyLayer(t, img).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	extractTar(t, rc, root)
	rc.Close()

	sh := func(script string) (string, error) {
		cmd := exec.Command(chroot, root, "/bin/sh", "-c", script)
		cmd.Env = []string{defaultPath}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := sh("echo ok"); err != nil || out != "ok\n" {
		t.Fatalf("sh -c 'echo ok': %q, %v", out, err)
	}
	if out, err := sh("id -u www-data; id -g operator; ls -d /tmp"); err != nil || out != "33\n37\n/tmp\n" {
		t.Errorf("user lookup and ls: %q, %v", out, err)
	}

	if !busyboxIsDynamic(t, b) {
		return
	}
	// The reason for the dynamic busybox: the shell must exec /bin/ls, so a container
	// that masks /bin/ls really loses ls while sh keeps working.
	if err := os.Remove(filepath.Join(root, "bin", "ls")); err != nil {
		t.Fatal(err)
	}
	if out, err := sh("ls /"); err == nil {
		t.Errorf("sh -c ls still works without /bin/ls (%q): the shell runs applets without exec", out)
	}
	if out, err := sh("echo still"); err != nil || out != "still\n" {
		t.Errorf("sh broken after removing /bin/ls: %q, %v", out, err)
	}
}

func TestBusyboxOverride(t *testing.T) {
	if !fileExists(staticBusybox) {
		t.Skip("no " + staticBusybox)
	}
	var logs bytes.Buffer
	b := &Builder{CacheDir: t.TempDir(), BusyboxPath: staticBusybox, Logf: func(string, ...any) { logs.WriteString("x") }}
	f, err := b.BusyboxFS()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(f.Paths(), func(p string) bool { return strings.HasPrefix(p, "/lib") }) {
		t.Error("static busybox should need no libraries")
	}
	if !slices.Contains(f.Paths(), "/bin/sh") {
		t.Error("/bin/sh missing")
	}
	if logs.Len() != 0 {
		t.Error("an explicit BusyboxPath must not download or warn")
	}
}

func TestBusyboxFallsBackToStatic(t *testing.T) {
	if !fileExists(staticBusybox) {
		t.Skip("no " + staticBusybox)
	}
	t.Setenv("KCTR_BUSYBOX", "")
	t.Setenv("PATH", t.TempDir()) // no apt-get: the download must fail
	var warned bool
	b := &Builder{CacheDir: t.TempDir(), Logf: func(format string, args ...any) {
		warned = warned || strings.Contains(format, "WARNING")
	}}
	bin, err := b.busyboxBinary()
	if err != nil {
		t.Fatal(err)
	}
	if bin != staticBusybox || !warned {
		t.Errorf("got %s (warned: %v), want %s with a warning", bin, warned, staticBusybox)
	}
	if _, err := b.Busybox(); err != nil {
		t.Fatalf("static fallback image: %v", err)
	}
}
