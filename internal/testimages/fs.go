package testimages

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the timestamp of every file and image, so that digests depend only on content.
var epoch = time.Unix(0, 0).UTC()

// FS describes the content of one image layer. Entries are written straight into a tar
// stream, so no root filesystem is ever created on disk and no host file ownership or
// timestamps leak into the image. Paths are absolute image paths ("/bin/sh"); missing
// parent directories are created with mode 0755. Adding a path twice replaces the
// earlier entry, which lets callers override files of a base tree (e.g. /etc/passwd).
type FS struct {
	entries map[string]*entry
	err     error
}

type entry struct {
	typ      byte        // tar.TypeReg, tar.TypeDir, tar.TypeLink or tar.TypeSymlink
	mode     fs.FileMode // permission bits plus setuid/setgid/sticky
	uid, gid int
	target   string // hard link target (clean image path) or symlink text
	size     int64
	open     func() io.Reader // regular file content, exactly size bytes
}

// NewFS returns an empty layer description.
func NewFS() *FS {
	return &FS{entries: map[string]*entry{}}
}

// cleanPath turns an image path into its tar name without leading slash; it reports
// an empty string for the root, which cannot be an entry of its own.
func cleanPath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

func (f *FS) add(p string, e *entry) {
	name := cleanPath(p)
	if name == "" {
		f.setErr(fmt.Errorf("testimages: cannot add the root directory as %q", p))
		return
	}
	f.entries[name] = e
}

func (f *FS) setErr(err error) {
	if f.err == nil {
		f.err = err
	}
}

// Dir adds a directory. mode may carry fs.ModeSticky, fs.ModeSetuid and fs.ModeSetgid
// (e.g. fs.ModeSticky|0o777 for /tmp).
func (f *FS) Dir(p string, mode fs.FileMode) {
	f.add(p, &entry{typ: tar.TypeDir, mode: mode})
}

// File adds a regular file holding data.
func (f *FS) File(p string, mode fs.FileMode, data []byte) {
	f.add(p, &entry{typ: tar.TypeReg, mode: mode, size: int64(len(data)),
		open: func() io.Reader { return bytes.NewReader(data) }})
}

// FileFrom adds a regular file of size bytes read from open(), which is called once per
// tar stream. It lets large generated content stream into the layer without first being
// held in memory as a whole.
func (f *FS) FileFrom(p string, mode fs.FileMode, size int64, open func() io.Reader) {
	f.add(p, &entry{typ: tar.TypeReg, mode: mode, size: size, open: open})
}

// Hardlink adds p as a tar hard link to the regular file target, which must be part of
// the same FS. Real hard links (not symlinks) matter for busybox applets: masking one
// name with a bind mount must not mask the others.
func (f *FS) Hardlink(p, target string) {
	f.add(p, &entry{typ: tar.TypeLink, target: cleanPath(target)})
}

// Symlink adds p as a symbolic link whose content is target, stored verbatim.
func (f *FS) Symlink(p, target string) {
	f.add(p, &entry{typ: tar.TypeSymlink, mode: 0o777, target: target})
}

// Program adds an executable (mode 0755) at p, plus hard links to it at every path in
// links. It is the one call needed to put a multi-call helper binary into an image.
func (f *FS) Program(p string, data []byte, links ...string) {
	f.File(p, 0o755, data)
	for _, l := range links {
		f.Hardlink(l, p)
	}
}

// Chown sets the numeric owner of an existing entry (entries default to 0:0). Hard links
// share their target's owner, so changing one is an error reported by Tar.
func (f *FS) Chown(p string, uid, gid int) {
	e, ok := f.entries[cleanPath(p)]
	switch {
	case !ok:
		f.setErr(fmt.Errorf("testimages: chown %q: no such entry", p))
	case e.typ == tar.TypeLink:
		f.setErr(fmt.Errorf("testimages: chown %q: is a hard link", p))
	default:
		e.uid, e.gid = uid, gid
	}
}

// Paths lists the image paths of all explicit entries, sorted; mostly for tests.
func (f *FS) Paths() []string {
	out := make([]string, 0, len(f.entries))
	for name := range f.entries {
		out = append(out, "/"+name)
	}
	sort.Strings(out)
	return out
}

// tarMode converts Go file mode bits into the Unix bits stored in tar headers.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// WriteTar writes the layer as a tar stream. The output is canonical: entries are sorted
// by path, hard links come after all other entries (a link must follow its target in the
// stream, and sorting alone would put /bin/ash before /bin/busybox), every timestamp is
// the Unix epoch and owners are numeric only.
func (f *FS) WriteTar(w io.Writer) error {
	if f.err != nil {
		return f.err
	}
	all := make(map[string]*entry, len(f.entries))
	for name, e := range f.entries {
		all[name] = e
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := f.entries[dir]; !ok {
				all[dir] = &entry{typ: tar.TypeDir, mode: 0o755}
			}
		}
	}
	var names, links []string
	for name, e := range all {
		if parent := path.Dir(name); parent != "." && all[parent].typ != tar.TypeDir {
			return fmt.Errorf("testimages: parent of /%s is not a directory", name)
		}
		if e.typ != tar.TypeLink {
			names = append(names, name)
			continue
		}
		if t, ok := all[e.target]; !ok || t.typ != tar.TypeReg {
			return fmt.Errorf("testimages: hard link /%s: target /%s is not a regular file of this layer", name, e.target)
		}
		links = append(links, name)
	}
	sort.Strings(names)
	sort.Strings(links)

	tw := tar.NewWriter(w)
	for _, name := range append(names, links...) {
		e := all[name]
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     name,
			Mode:     tarMode(e.mode),
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  epoch,
		}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = e.size
		case tar.TypeLink:
			t := all[e.target]
			hdr.Linkname = e.target
			hdr.Mode, hdr.Uid, hdr.Gid = tarMode(t.mode), t.uid, t.gid
		case tar.TypeSymlink:
			hdr.Linkname = e.target
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("testimages: tar header /%s: %w", name, err)
		}
		if e.typ == tar.TypeReg {
			n, err := io.Copy(tw, io.LimitReader(e.open(), e.size))
			if err != nil {
				return fmt.Errorf("testimages: tar content /%s: %w", name, err)
			}
			if n != e.size {
				return fmt.Errorf("testimages: tar content /%s: got %d bytes, want %d", name, n, e.size)
			}
		}
	}
	return tw.Close()
}

// Layer builds the gzip-compressed OCI layer.
func (f *FS) Layer() (v1.Layer, error) {
	return f.layer(gzip.DefaultCompression)
}

// layer compresses in one pass while hashing the uncompressed stream, so the diff ID
// never needs a second decompression pass (which matters for large benchmark layers).
func (f *FS) layer(level int) (v1.Layer, error) {
	var buf bytes.Buffer
	if level == gzip.NoCompression {
		// Output size is known up front; avoid re-copying large layers while growing.
		buf.Grow(int(f.tarSizeEstimate() + f.tarSizeEstimate()/32000*5 + 1024))
	}
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	if err := f.WriteTar(io.MultiWriter(zw, diff)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	gz := buf.Bytes()
	return &memLayer{
		gz:     gz,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(gz))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", diff.Sum(nil))},
	}, nil
}

// tarSizeEstimate bounds the tar stream size: a header block per entry (plus one per
// implied directory, at most) and content padded to blocks, plus the end marker.
func (f *FS) tarSizeEstimate() int64 {
	n := int64(1024)
	for name, e := range f.entries {
		n += 512 * int64(1+strings.Count(name, "/"))
		n += (e.size + 511) / 512 * 512
	}
	return n
}

// memLayer is a finished gzip layer held in memory.
type memLayer struct {
	gz             []byte
	digest, diffID v1.Hash
}

var _ v1.Layer = (*memLayer)(nil)

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)     { return int64(len(l.gz)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}
