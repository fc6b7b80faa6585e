package testimages

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// defaultPath is the PATH that Docker Hub images conventionally set.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// staticBusybox is the busybox-static binary; only a fallback, see busyboxBinary.
const staticBusybox = "/bin/busybox"

// Typical users and groups of busybox images; the CRI conformance suite runs containers
// as some of them by name (e.g. www-data) and checks the resolved IDs.
const (
	busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
	// glibc would fall back to much the same, but spelling it out keeps name lookups
	// independent of the glibc version copied in.
	busyboxNsswitch = `passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
`
)

// Busybox builds the general-purpose test image: busybox with all applets in /bin,
// the usual users and groups, PATH set and `sh` as the command.
func (b *Builder) Busybox() (v1.Image, error) {
	f, err := b.BusyboxFS()
	if err != nil {
		return nil, err
	}
	l, err := f.Layer()
	if err != nil {
		return nil, err
	}
	return NewImage(v1.Config{Env: []string{defaultPath}, Cmd: []string{"sh"}}, l)
}

// BusyboxFS returns the busybox root filesystem before it becomes a layer, so that
// derived images can add or override files and still be a single layer.
func (b *Builder) BusyboxFS() (*FS, error) {
	bin, err := b.busyboxBinary()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := run(ctx, "", nil, bin, "--list")
	if err != nil {
		return nil, fmt.Errorf("testimages: listing busybox applets: %w", err)
	}
	applets := parseApplets(out)
	if len(applets) == 0 {
		return nil, fmt.Errorf("testimages: %s --list printed no applets", bin)
	}
	libs, err := sharedLibraries(ctx, bin)
	if err != nil {
		return nil, err
	}

	f := NewFS()
	for _, d := range []string{"/bin", "/usr/sbin", "/etc", "/home", "/var/run", "/var/www", "/proc", "/sys", "/dev"} {
		f.Dir(d, 0o755)
	}
	f.Dir("/root", 0o700)
	f.Dir("/tmp", fs.ModeSticky|0o777)
	f.File("/etc/passwd", 0o644, []byte(busyboxPasswd))
	f.File("/etc/group", 0o644, []byte(busyboxGroup))
	f.File("/etc/nsswitch.conf", 0o644, []byte(busyboxNsswitch))
	links := make([]string, 0, len(applets))
	for _, a := range applets {
		links = append(links, "/bin/"+a)
	}
	f.Program("/bin/busybox", data, links...)
	for _, lib := range libs {
		content, err := os.ReadFile(lib) // follows symlinks: the image gets the real file
		if err != nil {
			return nil, fmt.Errorf("testimages: copying library: %w", err)
		}
		fi, err := os.Stat(lib)
		if err != nil {
			return nil, err
		}
		f.File(lib, fi.Mode().Perm(), content)
	}
	return f, nil
}

// busyboxBinary picks the busybox to package. It has to be Debian's dynamically linked
// build: Debian's busybox-static enables "exec prefers applets", so its shell runs
// applets in-process and `sh -c ls` keeps working even when the container masks /bin/ls,
// which breaks the conformance tests that mask paths. busybox-static conflicts with the
// dynamic package, so the latter is never installed, only downloaded and unpacked into
// the cache. The static binary is used, with a warning, only if that download fails.
func (b *Builder) busyboxBinary() (string, error) {
	if b.BusyboxPath != "" {
		return b.BusyboxPath, nil
	}
	if p := os.Getenv("KCTR_BUSYBOX"); p != "" {
		return p, nil
	}
	cache, err := b.cacheDir()
	if err != nil {
		return "", err
	}
	debDir := filepath.Join(cache, "busybox-deb")
	bin := filepath.Join(debDir, "x", "bin", "busybox")
	b.mu.Lock()
	defer b.mu.Unlock()
	if isFile(bin) {
		return bin, nil
	}
	derr := b.downloadBusybox(cache, debDir)
	if derr == nil && isFile(bin) {
		return bin, nil
	}
	if !isFile(staticBusybox) {
		return "", fmt.Errorf("testimages: no busybox: download failed (%v) and %s is missing", derr, staticBusybox)
	}
	b.logf("testimages: WARNING: using static %s because the dynamic Debian busybox is unavailable (%v); "+
		"its shell runs applets without exec, so tests that mask binaries will misbehave", staticBusybox, derr)
	return staticBusybox, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// downloadBusybox fetches and unpacks busybox_*.deb in a scratch directory that is then
// renamed to debDir, so an interrupted download never looks like a finished one.
func (b *Builder) downloadBusybox(cache, debDir string) error {
	b.logf("testimages: downloading Debian's busybox package into %s", debDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp(cache, "busybox-deb.tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := run(ctx, tmp, nil, "apt-get", "download", "busybox"); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "busybox_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download busybox left %d .deb files", len(debs))
	}
	if _, err := run(ctx, tmp, nil, "dpkg-deb", "-x", filepath.Base(debs[0]), "x"); err != nil {
		return err
	}
	if !isFile(filepath.Join(tmp, "x", "bin", "busybox")) {
		return fmt.Errorf("%s has no bin/busybox", filepath.Base(debs[0]))
	}
	if err := os.Rename(tmp, debDir); err != nil && !isFile(filepath.Join(debDir, "x", "bin", "busybox")) {
		return err
	}
	return nil
}

// parseApplets reads `busybox --list`: one applet name per line. The result is sorted
// and never contains "busybox" itself or anything that is not a plain file name.
func parseApplets(out []byte) []string {
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a := strings.TrimSpace(sc.Text())
		if a == "" || a == "busybox" || a == "." || a == ".." || strings.Contains(a, "/") {
			continue
		}
		applets = append(applets, a)
	}
	sort.Strings(applets)
	return applets
}

// sharedLibraries lists the absolute paths, as the dynamic loader names them, of the
// interpreter and libraries that bin needs; nothing for a static binary.
func sharedLibraries(ctx context.Context, bin string) ([]string, error) {
	ef, err := elf.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("testimages: %s: %w", bin, err)
	}
	dynamic := false
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	ef.Close()
	if !dynamic {
		return nil, nil
	}
	out, err := run(ctx, "", nil, "ldd", bin)
	if err != nil {
		return nil, fmt.Errorf("testimages: resolving libraries: %w", err)
	}
	return parseLdd(out)
}

// parseLdd extracts library paths from ldd output, which has three kinds of lines:
//
//	linux-vdso.so.1 (0x00007ffd...)                                  kernel-provided, skipped
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f...)        resolved library
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)                         the interpreter
func parseLdd(out []byte) ([]string, error) {
	seen := map[string]bool{}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var p string
		if lib, target, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("testimages: ldd: %s not found", strings.TrimSpace(lib))
			}
			if fields := strings.Fields(target); len(fields) > 0 {
				p = fields[0]
			}
		} else if fields := strings.Fields(line); len(fields) > 0 {
			p = fields[0]
		}
		if !strings.HasPrefix(p, "/") || seen[p] {
			continue
		}
		seen[p] = true
		libs = append(libs, p)
	}
	sort.Strings(libs)
	return libs, nil
}
