package testimages

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestMultiLayer(t *testing.T) {
	const n, size = 3, 256 << 10
	img, err := MultiLayer(n, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != n {
		t.Fatalf("%d layers, want %d", len(layers), n)
	}
	seen := map[string]bool{}
	for i, l := range layers {
		entries := layerEntries(t, l)
		if len(entries) != 1 {
			t.Fatalf("layer %d has %d entries, want 1", i, len(entries))
		}
		h := entries[0].hdr
		if want := fmt.Sprintf("layer-%d", i); h.Name != want || h.Size != size || h.Typeflag != tar.TypeReg {
			t.Errorf("layer %d: %s (%d bytes), want %s of %d bytes", i, h.Name, h.Size, want, size)
		}
		// Incompressible: the blob is no smaller than its content.
		if csize, _ := l.Size(); csize < size {
			t.Errorf("layer %d compressed to %d bytes; content is not random", i, csize)
		}
		d, _ := l.Digest()
		if seen[d.String()] {
			t.Errorf("layer %d repeats digest %s", i, d)
		}
		seen[d.String()] = true
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer %d media type %s", i, mt)
		}
	}

	same, err := MultiLayer(n, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := MultiLayer(n, size, 2)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, same) {
		t.Error("same seed gave different digests")
	}
	if digestOf(t, img) == digestOf(t, other) {
		t.Error("different seeds gave the same digest")
	}
	if _, err := MultiLayer(0, size, 1); err == nil {
		t.Error("MultiLayer(0, ...) succeeded")
	}
}

// Text layers compress to about a quarter, stay reproducible, and hold
// exactly the size asked for.
func TestMultiLayerText(t *testing.T) {
	const n, size = 2, 256 << 10
	img, err := MultiLayerText(n, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		entries := layerEntries(t, l)
		if len(entries) != 1 || entries[0].hdr.Size != size {
			t.Fatalf("layer %d: %d entries, want one file of %d bytes", i, len(entries), size)
		}
		if csize, _ := l.Size(); csize > size/3 || csize < size/8 {
			t.Errorf("layer %d compressed to %d of %d bytes, want about a quarter", i, csize, size)
		}
	}
	same, err := MultiLayerText(n, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, same) {
		t.Error("same seed gave different digests")
	}
}

func TestWithUser(t *testing.T) {
	base, err := MultiLayer(1, 16, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"1002", "www-data", "1003:1004"} {
		img, err := WithUser(base, user)
		if err != nil {
			t.Fatal(err)
		}
		if got := configOf(t, img).Config.User; got != user {
			t.Errorf("User %q, want %q", got, user)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("media type changed to %s", mt)
		}
		if m, _ := img.Manifest(); m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("config media type changed to %s", m.Config.MediaType)
		}
	}
	if got := configOf(t, base).Config.User; got != "" {
		t.Errorf("WithUser modified its base: User %q", got)
	}
	a, _ := WithUser(base, "1002")
	b, _ := WithUser(base, "1002")
	if digestOf(t, a) != digestOf(t, b) {
		t.Error("WithUser is not deterministic")
	}
}

func TestPauseImage(t *testing.T) {
	b := testBuilder(t)
	img, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Pause()
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, again) {
		t.Error("two pause builds differ")
	}
	cf := configOf(t, img)
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" || cf.Config.WorkingDir != "/" {
		t.Errorf("config: Entrypoint %q User %q WorkingDir %q", cf.Config.Entrypoint, cf.Config.User, cf.Config.WorkingDir)
	}
	entries := layerEntries(t, onlyLayer(t, img))
	if len(entries) != 1 || entries[0].hdr.Name != "pause" || entries[0].hdr.Mode != 0o755 {
		t.Fatalf("layer should hold only /pause with mode 0755")
	}
	ef, err := elf.NewFile(bytes.NewReader(entries[0].data))
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Error("/pause is dynamically linked")
	}
}

// TestPauseProgram runs both the module build and the embedded-source fallback build.
func TestPauseProgram(t *testing.T) {
	b := testBuilder(t)
	fromModule, err := b.GoProgram(PausePackage)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := b.compileEmbeddedPause()
	if err != nil {
		t.Fatal(err)
	}
	for name, bin := range map[string]string{"module": fromModule, "embedded": embedded} {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(bin, "-v").Output()
			if err != nil || !strings.HasPrefix(string(out), "kctr-pause ") {
				t.Fatalf("-v: %q, %v", out, err)
			}
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
				cmd := exec.Command(bin)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// Give the runtime time to install its handlers: a signal before that
				// would kill the process by default action and fail the test spuriously.
				time.Sleep(100 * time.Millisecond)
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("after %v: %v, want exit status 0", sig, err)
					}
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					t.Fatalf("pause ignored %v", sig)
				}
			}
		})
	}
}

// TestPauseReapsZombies runs pause as PID 1 of a new PID namespace, orphans a child into
// it and checks that the child does not stay a zombie.
func TestPauseReapsZombies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("PID namespaces need root")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("no nsenter")
	}
	bin, err := testBuilder(t).GoProgram(PausePackage)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot create a PID namespace: %v", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	time.Sleep(100 * time.Millisecond)
	pid := fmt.Sprint(cmd.Process.Pid)
	// The shell exits at once, so `sleep` is re-parented to pause and exits later.
	// No output pipes: the orphan would inherit them and keep the command "running".
	if err := exec.Command(nsenter, "-t", pid, "-p", "--", "/bin/sh", "-c", "sleep 0.5 & exit 0").Run(); err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	if len(childrenOf(t, pid)) == 0 {
		t.Fatal("the orphan was not re-parented to pause; the test proves nothing")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(childrenOf(t, pid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pause still has children %v: zombies are not reaped", childrenOf(t, pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childrenOf lists the live or zombie children of pid from /proc.
func childrenOf(t *testing.T, pid string) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		data, err := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/children")
		if err != nil {
			t.Skipf("kernel lists no children: %v", err)
		}
		out = append(out, strings.Fields(string(data))...)
	}
	return out
}

// BenchmarkMultiLayer sizes the setup cost of pull benchmarks (64 MiB per iteration).
func BenchmarkMultiLayer(b *testing.B) {
	b.SetBytes(4 << 24)
	for b.Loop() {
		if _, err := MultiLayer(4, 1<<24, 1); err != nil {
			b.Fatal(err)
		}
	}
}
