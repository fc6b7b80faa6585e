package testimages

import (
	"context"
	"crypto/sha256"
	_ "embed" // pause source, for builds without the checkout
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PausePackage is the import path of the pause program.
const PausePackage = modulePath + "/internal/testimages/pause"

// pauseSource lets Pause work even where the module checkout is not around (a test
// binary run elsewhere): it is then compiled as a throwaway standalone module, which
// works because the program uses only the standard library.
//
//go:embed pause/main.go
var pauseSource []byte

// Pause builds the pod sandbox image: a single static /pause binary that sleeps until
// SIGTERM/SIGINT and reaps zombies, run as 65535:65535 like the upstream pause image.
func (b *Builder) Pause() (v1.Image, error) {
	bin, err := b.GoProgram(PausePackage)
	if errors.Is(err, errNoModule) {
		b.logf("testimages: %v; compiling the embedded pause source instead", err)
		bin, err = b.compileEmbeddedPause()
	}
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	f := NewFS()
	f.File("/pause", 0o755, data)
	l, err := f.Layer()
	if err != nil {
		return nil, err
	}
	return NewImage(v1.Config{
		Env:        []string{defaultPath},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		WorkingDir: "/",
	}, l)
}

func (b *Builder) compileEmbeddedPause() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "kctr-pause-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// An old go directive keeps the local toolchain from trying to download a newer one.
	gomod := "module kctr.invalid/pause\n\ngo 1.22\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), pauseSource, 0o644); err != nil {
		return "", err
	}
	ver, err := goVersion(ctx, dir)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "embedded\n%s\n%s\n%s", ver, runtime.GOARCH, pauseSource)))
	return b.compile(ctx, "pause", key, dir, ".")
}
