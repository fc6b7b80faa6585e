package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MountsUnder lists the mount points at or below dir (as seen in
// /proc/self/mountinfo), deepest first, so they can be unmounted in order.
func MountsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// "36 35 98:0 /root /mount/point rw,... - fstype source opts"
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Deepest first: a parent cannot be detached cleanly while children
	// are still listed below it, and the same point may be stacked twice.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i], "/") > strings.Count(out[j], "/")
	})
	return out, nil
}

// unescapeMountinfo undoes the kernel's octal escaping (\040 for space,
// \011, \012, \134) of paths in mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAllUnder lazily detaches every mount at or below dir. MNT_DETACH
// is used because a leaked mount may still be busy (an orphaned shim, an
// open file); detaching still lets us remove the directory tree.
func unmountAllUnder(dir string) error {
	var errs []error
	// A stacked mount point shows up several times; loop until none is left
	// or nothing changes.
	for range 10 {
		mps, err := MountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	mps, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %v", dir, mps))
	}
	return errors.Join(errs...)
}

// UnmountAll detaches every mount under dir (deepest first), e.g. network
// namespaces a failed test left mounted, so dir can be removed.
func UnmountAll(dir string) error {
	return unmountAllUnder(dir)
}
