package testimages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// modulePath is the module whose main packages GoProgram can compile.
const modulePath = "github.com/kctr/kctr"

// Builder builds the images. Inputs that are slow to obtain (the busybox .deb, compiled
// helper programs) are kept in CacheDir under names derived from their content, so
// repeated builds, even from separate test processes sharing the directory, are fast and
// never see a stale or half-written file. The zero value is usable.
type Builder struct {
	// CacheDir holds downloaded and compiled inputs; empty means DefaultCacheDir().
	CacheDir string
	// BusyboxPath, if set, is the busybox binary to use instead of looking one up.
	BusyboxPath string
	// Logf reports slow steps and degraded fallbacks; nil means log.Printf.
	Logf func(format string, args ...any)

	mu sync.Mutex // serialises cache population within one process
}

// DefaultCacheDir is shared by every Builder without an explicit CacheDir, so separate
// test runs reuse each other's downloads and compilations.
func DefaultCacheDir() string {
	return filepath.Join(os.TempDir(), "kctr-testimages-cache")
}

// NewBuilder returns a Builder caching into cacheDir (DefaultCacheDir() if empty).
func NewBuilder(cacheDir string) *Builder {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir()
	}
	return &Builder{CacheDir: cacheDir}
}

func (b *Builder) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (b *Builder) cacheDir() (string, error) {
	dir := b.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testimages: cache dir: %w", err)
	}
	return dir, nil
}

// run executes a command and folds its output into the error, since the commands used
// here (go build, apt-get, dpkg-deb) explain their failures only on stdout/stderr.
func run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// errNoModule means the module's source tree is not available, e.g. for a test binary
// copied away from the checkout.
var errNoModule = errors.New("testimages: source tree of " + modulePath + " not found")

// moduleRoot finds the checkout so that `go build` can run inside the module whatever
// the caller's working directory: first next to this source file (right for `go test`
// of any package and for `go run` tools, whose binaries record absolute source paths),
// then wherever `go env GOMOD` points from the working directory (binaries built with
// -trimpath record no usable path).
func moduleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
			if isOurModule(filepath.Join(dir, "go.mod")) {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		gomod := strings.TrimSpace(string(out))
		if gomod != "" && gomod != os.DevNull && isOurModule(gomod) {
			return filepath.Dir(gomod), nil
		}
	}
	return "", errNoModule
}

func isOurModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == modulePath
		}
	}
	return false
}

// goVersion is part of every compile cache key: a toolchain upgrade must rebuild.
func goVersion(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, nil, "go", "env", "GOVERSION")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// GoProgram compiles the main package pkg of this module (an import path such as
// modulePath+"/internal/testimages/pause") into a static linux binary for the host
// architecture and returns its path in the cache. The cache key covers the Go version,
// go.mod and every non-test file of the package directory, so helpers must import only
// the standard library and modules listed in go.mod, not other packages of this module.
func (b *Builder) GoProgram(pkg string) (string, error) {
	rel, ok := strings.CutPrefix(pkg, modulePath+"/")
	if !ok {
		return "", fmt.Errorf("testimages: GoProgram(%q): not a package of %s", pkg, modulePath)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ver, err := goVersion(ctx, root)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", ver, runtime.GOARCH, pkg)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "go.mod %d\n%s", len(gomod), gomod)
	pkgDir := filepath.Join(root, filepath.FromSlash(rel))
	ents, err := os.ReadDir(pkgDir)
	if err != nil {
		return "", fmt.Errorf("testimages: GoProgram(%q): %w", pkg, err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), "_test.go") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(pkgDir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n%s", n, len(data), data)
	}
	return b.compile(ctx, path.Base(pkg), hex.EncodeToString(h.Sum(nil)), root, pkg)
}

// compile runs go build in dir unless the cache already has the binary for key. The
// result is renamed into place, so concurrent builders at worst compile twice.
func (b *Builder) compile(ctx context.Context, base, key, dir, target string) (string, error) {
	cache, err := b.cacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, base+"-"+key[:16])
	b.mu.Lock()
	defer b.mu.Unlock()
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	b.logf("testimages: compiling %s into %s", target, out)
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	defer os.Remove(tmp)
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}
	if _, err := run(ctx, dir, env, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp, target); err != nil {
		return "", fmt.Errorf("testimages: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// AddGoProgram compiles pkg (see GoProgram) and adds it to f at path p with hard links
// at links, e.g. one static helper installed as /usr/bin/pgrep and /usr/bin/pkill.
func (b *Builder) AddGoProgram(f *FS, pkg, p string, links ...string) error {
	bin, err := b.GoProgram(pkg)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	f.Program(p, data, links...)
	return nil
}
