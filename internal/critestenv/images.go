// Package critestenv is what running critest v1.37 on this kind of host
// takes, shared by kcrid's TestCritest and bench/critest-compare: critest's
// test images built offline and served under their original names, a CNI
// network for its pods, the specs the host cannot pass, critest's command
// line, and readers of its output.
package critestenv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// HelperPackage stands in for nginx, pgrep, pkill, ipcs and nonewprivs in
// the images (Debian's busybox lacks them); built with
// testimages.Builder.GoProgram.
const HelperPackage = "github.com/kctr/kctr/internal/critestenv/critesthelper"

// SandboxImage is the pause image a runtime under test should use: the
// default of kcrid and of containerd 2.x. Images does not include it (see
// SandboxImagePath).
const SandboxImage = "registry.k8s.io/pause:3.10"

// SandboxImagePath is SandboxImage as served through the mirror.
const SandboxImagePath = "pause:3.10"

// stagingRepo is where critest's own test images live (the part after
// gcr.io/).
const stagingRepo = "k8s-staging-cri-tools/"

// Images builds every image critest v1.37 pulls (apart from the sandbox
// image and the digest-pinned one that cannot exist offline), keyed by
// repository path and tag: the reference without its registry host, since
// a _default mirror serves registry.k8s.io and gcr.io alike from one
// registry (see Serve).
func Images(b *testimages.Builder) (map[string]v1.Image, error) {
	plain, err := b.Busybox()
	if err != nil {
		return nil, fmt.Errorf("critest images: busybox: %w", err)
	}
	pause, err := b.Pause()
	if err != nil {
		return nil, fmt.Errorf("critest images: pause: %w", err)
	}
	helperPath, err := b.GoProgram(HelperPackage)
	if err != nil {
		return nil, fmt.Errorf("critest images: helper: %w", err)
	}
	helper, err := os.ReadFile(helperPath)
	if err != nil {
		return nil, fmt.Errorf("critest images: helper: %w", err)
	}
	// critest's busybox runs pgrep and ipcs, which Debian's lacks.
	busybox, err := appendFiles(plain, func(f *testimages.FS) {
		f.Program("/usr/bin/pgrep", helper, "/usr/bin/pkill", "/usr/bin/ipcs")
	})
	if err != nil {
		return nil, fmt.Errorf("critest images: busybox: %w", err)
	}
	nginx, err := appendFiles(busybox, func(f *testimages.FS) {
		f.Program("/usr/sbin/nginx", helper)
	})
	if err == nil {
		nginx, err = withEntrypoint(nginx, "/usr/sbin/nginx")
	}
	if err != nil {
		return nil, fmt.Errorf("critest images: nginx: %w", err)
	}
	nonewprivs, err := appendFiles(plain, func(f *testimages.FS) {
		f.File("/usr/local/bin/nonewprivs", 0o755|fs.ModeSetuid, helper)
	})
	if err == nil {
		nonewprivs, err = withEntrypoint(nonewprivs, "/usr/local/bin/nonewprivs")
	}
	if err != nil {
		return nil, fmt.Errorf("critest images: nonewprivs: %w", err)
	}
	web, err := webServer(busybox, 80)
	if err != nil {
		return nil, fmt.Errorf("critest images: httpd: %w", err)
	}
	// critest's host-network port-forward spec fetches a page on 12003.
	hostNetWeb, err := webServer(busybox, 12003)
	if err != nil {
		return nil, fmt.Errorf("critest images: hostnet-nginx: %w", err)
	}
	// pause:3.9 must differ from the sandbox image (pause:3.10), or the
	// image specs count the sandbox image's tag too.
	pause39, err := mutate.Config(pause, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", Labels: map[string]string{"version": "3.9"}})
	if err != nil {
		return nil, fmt.Errorf("critest images: pause:3.9: %w", err)
	}
	predefinedGroup, err := predefinedGroupImage(busybox)
	if err != nil {
		return nil, fmt.Errorf("critest images: predefined group: %w", err)
	}
	images := map[string]v1.Image{
		"e2e-test-images/busybox:1.29-2":                            busybox,
		"e2e-test-images/nginx:1.14-2":                              nginx,
		"e2e-test-images/nonewprivs:1.3":                            nonewprivs,
		"pause:3.9":                                                 pause39,
		"e2e-test-images/httpd:2.4.39-4":                            web,
		stagingRepo + "test-image-predefined-group:latest":          predefinedGroup,
		stagingRepo + "hostnet-nginx-" + runtime.GOARCH + ":latest": hostNetWeb,
	}
	// The user and tag variants differ only in their configured user: that
	// is what the user specs check, and it gives the "different tag,
	// different image" specs distinct image IDs.
	users := map[string]string{
		"test-image-user-uid:latest":            "1002",
		"test-image-user-username:latest":       "www-data",
		"test-image-user-uid-group:latest":      "1003:1003",
		"test-image-user-username-group:latest": "www-data:www-data",
		"test-image-latest:latest":              "1",
		"test-image-tag:test":                   "2",
		"test-image-tag:all":                    "3",
		"test-image-1:latest":                   "11",
		"test-image-2:latest":                   "12",
		"test-image-3:latest":                   "13",
		"test-image-tags:1":                     "20",
		"test-image-tags:2":                     "20",
		"test-image-tags:3":                     "20",
	}
	for ref, user := range users {
		img, err := testimages.WithUser(busybox, user)
		if err != nil {
			return nil, fmt.Errorf("critest images: %s: %w", ref, err)
		}
		images[stagingRepo+ref] = img
	}
	return images, nil
}

// Serve pushes images to the plain-HTTP registry at registryHost
// ("127.0.0.1:PORT") under their paths and writes hostsDir (containerd's
// certs.d layout) so that every registry host is served from it: the
// runtime pulls critest's images under their original names.
func Serve(ctx context.Context, registryHost, hostsDir string, images map[string]v1.Image) error {
	if err := Push(ctx, registryHost, images); err != nil {
		return err
	}
	if err := testenv.WriteDefaultMirror(hostsDir, registryHost); err != nil {
		return fmt.Errorf("critest images: hosts dir: %w", err)
	}
	return nil
}

// Push pushes images to the registry at registryHost under their paths, in
// a fixed order so failures repeat.
func Push(ctx context.Context, registryHost string, images map[string]v1.Image) error {
	paths := make([]string, 0, len(images))
	for path := range images {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		if err := testimages.Push(ctx, images[path], registryHost+"/"+path); err != nil {
			return fmt.Errorf("critest images: %w", err)
		}
	}
	return nil
}

func appendFiles(base v1.Image, add func(*testimages.FS)) (v1.Image, error) {
	f := testimages.NewFS()
	add(f)
	return testimages.AppendFS(base, f)
}

func withEntrypoint(base v1.Image, entrypoint ...string) (v1.Image, error) {
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := *cf.Config.DeepCopy()
	cfg.Entrypoint, cfg.Cmd = entrypoint, nil
	return mutate.Config(base, cfg)
}

// webServer is busybox serving an index page on port with httpd, in place
// of the nginx and httpd images critest's networking and port-forward
// specs fetch a page from. It logs a line naming httpd, as the httpd
// image's specs expect.
func webServer(busybox v1.Image, port int) (v1.Image, error) {
	f := testimages.NewFS()
	f.Dir("/www", 0o755)
	f.File("/www/index.html", 0o644, []byte("<html>kcrid test web server</html>\n"))
	img, err := testimages.AppendFS(busybox, f)
	if err != nil {
		return nil, err
	}
	return withEntrypoint(img, "sh", "-c",
		fmt.Sprintf("echo httpd: serving /www on port %d; exec httpd -f -p %d -h /www", port, port))
}

// predefinedGroupImage has a user default-user (1000) that /etc/group puts
// in group-defined-in-image (50000), and runs as it, like critest's
// test-image-predefined-group.
func predefinedGroupImage(busybox v1.Image) (v1.Image, error) {
	f := testimages.NewFS()
	f.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"+
		"www-data:x:33:33:www-data:/var/www:/bin/sh\n"+
		"default-user:x:1000:1000:default:/home/default-user:/bin/sh\n"))
	f.File("/etc/group", 0o644, []byte("root:x:0:\nwww-data:x:33:\ndefault-user:x:1000:\n"+
		"group-defined-in-image:x:50000:default-user\n"))
	img, err := testimages.AppendFS(busybox, f)
	if err != nil {
		return nil, err
	}
	return testimages.WithUser(img, "1000")
}
