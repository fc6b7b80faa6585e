// Command demo is `make demo`: it starts a private containerd and a real
// registry (Debian's docker-registry, TLS and basic auth), pushes an image
// built offline, then shows kctr pulling it with credentials and running
// it. Everything it starts is stopped and removed at the end, also on
// Ctrl-C.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

func main() {
	binDir := flag.String("bin", "bin", "directory with the built kctr binaries")
	containerdVersion := flag.String("containerd", "1.6", "containerd to run: 1.6 (Debian's) or 2.4")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *containerdVersion); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// cleanups run in reverse order, whatever happened before.
type cleanups []func() error

func (c *cleanups) add(f func() error) { *c = append(*c, f) }

func (c cleanups) run() error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		errs = append(errs, c[i]())
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, binDir, containerdVersion string) (retErr error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run me as root: containerd mounts filesystems and creates cgroups")
	}
	kctrBin, err := filepath.Abs(filepath.Join(binDir, "kctr"))
	if err != nil {
		return err
	}
	var done cleanups
	defer func() {
		step("Cleaning up")
		if err := done.run(); err != nil && retErr == nil {
			retErr = err
		}
		if retErr == nil {
			fmt.Println("everything the demo started is stopped and removed")
		}
	}()

	step("Starting a private containerd " + containerdVersion)
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{Version: containerdVersion})
	if err != nil {
		return err
	}
	done.add(daemon.Stop)
	fmt.Printf("containerd %s listening on %s\n", daemon.DaemonVersion(), daemon.Address())

	step("Starting Debian's docker-registry with TLS and basic auth")
	const user, password = "demo", "kctr-demo-password"
	registry, err := testenv.StartDockerRegistry(ctx, testenv.DockerRegistryOptions{TLS: true, Users: map[string]string{user: password}})
	if err != nil {
		return err
	}
	done.add(registry.Stop)
	fmt.Printf("registry at https://%s (self-signed CA %s)\n", registry.Host(), registry.CAFile())

	step("Building a busybox image offline and pushing it")
	img, err := testimages.NewBuilder("").Busybox()
	if err != nil {
		return err
	}
	ref := registry.Host() + "/demo/busybox:latest"
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: registry.CertPool()}}
	if err := testimages.Push(ctx, img, ref, remote.WithAuth(&authn.Basic{Username: user, Password: password}), remote.WithTransport(transport)); err != nil {
		return err
	}
	digest, _ := img.Digest()
	fmt.Printf("pushed %s@%s\n", ref, digest)

	// What `docker login` leaves behind, and a hosts dir that trusts the CA.
	work, err := os.MkdirTemp("", "kctr-demo-")
	if err != nil {
		return err
	}
	done.add(func() error { return os.RemoveAll(work) })
	dockerConfig := filepath.Join(work, "docker")
	hostsDir := filepath.Join(work, "certs.d")
	if err := writeDemoConfig(dockerConfig, hostsDir, registry, user, password); err != nil {
		return err
	}

	kctrIn := func(namespace string, args ...string) error {
		full := append([]string{"--address", daemon.Address(), "--namespace", namespace, "--hosts-dir", hostsDir,
			"--data-root", filepath.Join(work, "kctr"), "--cni-netconfpath", filepath.Join(work, "kctr-net.d"),
			"--bridge-name", "kctrdemo1", "--bridge-subnet", "10.237.0.0/24"}, args...)
		shown := args
		if namespace != "demo" {
			shown = append([]string{"-n", namespace}, args...)
		}
		fmt.Printf("\n$ kctr %s\n", shellQuote(shown))
		cmd := exec.CommandContext(ctx, kctrBin, full...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("kctr %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
	kctr := func(args ...string) error { return kctrIn("demo", args...) }

	step("kctr pulls with the credentials from config.json and shows progress")
	if err := kctr("pull", ref); err != nil {
		return err
	}
	if err := kctr("images"); err != nil {
		return err
	}
	done.add(func() error { return testenv.RemoveBridge("kctrdemo1", "kctr-kctrdemo1") })
	step("kctr runs it on its bridge network and removes the container afterwards")
	if err := kctr("run", "--rm", ref, "sh", "-c", `echo "Hello from a container run by kctr"; echo "hostname: $(hostname)"; echo "user: $(id)"; ls /bin | wc -l | xargs echo "busybox applets:"`); err != nil {
		return err
	}

	pods := &podDemo{
		binDir: filepath.Dir(kctrBin), work: work, daemon: daemon, registry: registry,
		dockerConfig: dockerConfig, hostsDir: hostsDir, user: user, pass: password, kctrIn: kctrIn,
	}
	return pods.run(ctx, &done)
}

func writeDemoConfig(dockerConfig, hostsDir string, registry *testenv.DockerRegistry, user, password string) error {
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return err
	}
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	config := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`+"\n", registry.Host(), auth)
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(config), 0o600); err != nil {
		return err
	}
	hostDir := filepath.Join(hostsDir, registry.Host())
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return err
	}
	hosts := fmt.Sprintf("server = %q\n[host.%q]\n  ca = %q\n", "https://"+registry.Host(), "https://"+registry.Host(), registry.CAFile())
	return os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(hosts), 0o644)
}

func step(title string) {
	fmt.Printf("\n==> %s\n", title)
}

// shellQuote renders args the way a user would type them.
func shellQuote(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$;|&<>()*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}
