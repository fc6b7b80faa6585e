package testimages

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

func TestFSTarIsCanonical(t *testing.T) {
	f := NewFS()
	f.Program("/bin/busybox", []byte("bb"), "/bin/ash", "/bin/sh")
	f.Dir("/tmp", fs.ModeSticky|0o777)
	f.File("/etc/passwd", 0o644, []byte("root:x:0:0::/root:/bin/sh\n"))
	f.Symlink("/usr/bin", "../bin")
	f.File("/var/www/index.html", 0o600, []byte("hi"))
	f.Chown("/var/www/index.html", 33, 33)

	var first bytes.Buffer
	if err := f.WriteTar(&first); err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, bytes.NewReader(first.Bytes()))
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
		if !e.hdr.ModTime.Equal(epoch) || e.hdr.Uname != "" || e.hdr.Gname != "" {
			t.Errorf("%s: mtime %v owner names %q/%q, want epoch and numeric owners only", e.hdr.Name, e.hdr.ModTime, e.hdr.Uname, e.hdr.Gname)
		}
	}
	// Parents are implied, regular entries are sorted, and hard links come last so
	// that each follows its target even when it sorts before it.
	want := []string{"bin/", "bin/busybox", "etc/", "etc/passwd", "tmp/", "usr/", "usr/bin", "var/", "var/www/", "var/www/index.html", "bin/ash", "bin/sh"}
	if !slices.Equal(names, want) {
		t.Fatalf("tar order\n got %q\nwant %q", names, want)
	}
	m := byName(entries)
	if got := m["tmp"].hdr.Mode; got != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", got)
	}
	if h := m["bin/sh"].hdr; h.Typeflag != tar.TypeLink || h.Linkname != "bin/busybox" {
		t.Errorf("/bin/sh: type %q link %q, want hard link to bin/busybox", h.Typeflag, h.Linkname)
	}
	if h := m["usr/bin"].hdr; h.Typeflag != tar.TypeSymlink || h.Linkname != "../bin" {
		t.Errorf("/usr/bin: type %q link %q, want symlink to ../bin", h.Typeflag, h.Linkname)
	}
	if h := m["var/www/index.html"].hdr; h.Uid != 33 || h.Gid != 33 || h.Mode != 0o600 {
		t.Errorf("index.html: %d:%d mode %o, want 33:33 0600", h.Uid, h.Gid, h.Mode)
	}

	var again bytes.Buffer
	if err := f.WriteTar(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), again.Bytes()) {
		t.Error("two tar streams of the same FS differ")
	}
}

func TestFSErrors(t *testing.T) {
	for name, build := range map[string]func(f *FS){
		"dangling hard link":   func(f *FS) { f.Hardlink("/bin/sh", "/bin/busybox") },
		"hard link to dir":     func(f *FS) { f.Dir("/d", 0o755); f.Hardlink("/l", "/d") },
		"file as parent":       func(f *FS) { f.File("/a", 0o644, nil); f.File("/a/b", 0o644, nil) },
		"root entry":           func(f *FS) { f.Dir("/", 0o755) },
		"chown missing entry":  func(f *FS) { f.Chown("/nope", 1, 1) },
		"chown of a hard link": func(f *FS) { f.Program("/x", nil, "/y"); f.Chown("/y", 1, 1) },
	} {
		f := NewFS()
		build(f)
		if err := f.WriteTar(&bytes.Buffer{}); err == nil {
			t.Errorf("%s: WriteTar succeeded, want an error", name)
		}
	}
}

func TestFSLayerDigestsMatchContent(t *testing.T) {
	f := NewFS()
	f.File("/hello", 0o644, []byte(strings.Repeat("hello ", 1000)))
	l, err := f.Layer()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := l.MediaType()
	if mt != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("media type %s", mt)
	}
	// The hashes computed while writing must equal those of the actual streams.
	rc, _ := l.Compressed()
	defer rc.Close()
	var gz bytes.Buffer
	if _, err := gz.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Digest(); d.Hex != sha256Hex(gz.Bytes()) {
		t.Errorf("digest %s does not match compressed content", d)
	}
	if size, _ := l.Size(); size != int64(gz.Len()) {
		t.Errorf("size %d, compressed stream has %d bytes", size, gz.Len())
	}
	var raw bytes.Buffer
	if err := f.WriteTar(&raw); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.DiffID(); d.Hex != sha256Hex(raw.Bytes()) {
		t.Errorf("diff ID %s does not match tar content", d)
	}
}

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffc8d1e9000)
	libresolv.so.2 => /lib/x86_64-linux-gnu/libresolv.so.2 (0x00007f1a144f2000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1a14310000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f1a145d4000)
`
	libs, err := parseLdd([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libresolv.so.2", "/lib64/ld-linux-x86-64.so.2"}
	if !slices.Equal(libs, want) {
		t.Errorf("got %q, want %q", libs, want)
	}
	if _, err := parseLdd([]byte("\tlibfoo.so.1 => not found\n")); err == nil {
		t.Error("a missing library was not reported")
	}
}

func TestParseApplets(t *testing.T) {
	got := parseApplets([]byte("sh\n[\nbusybox\n\nls\n../evil\n[[\n"))
	want := []string{"[", "[[", "ls", "sh"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
