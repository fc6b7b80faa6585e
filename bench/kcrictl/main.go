// Command kcrictl compares `kcrictl ps` and `kcrictl pods` with crictl's,
// in the same run, against a private containerd (CRI enabled) running 50
// containers: first with the endpoint given (-r), then with no endpoint at
// all and only the third default socket alive (/var/run/cri-dockerd.sock;
// the containerd and CRI-O defaults absent), which is measured inside a
// private mount namespace with a tmpfs over /run (fallback.go). It prints
// medians and ratios: these machines are noisy, so absolute times mean
// little on their own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/bench/measure"
	"github.com/kctr/kctr/endpoints"
	"github.com/kctr/kctr/internal/testenv"
	"github.com/kctr/kctr/internal/testimages"
)

// Environment variables that would choose an endpoint or a config file for
// both tools: the bench clears them so each run says exactly what it uses.
var endpointEnv = []string{endpoints.EnvRuntimeEndpoint, "IMAGE_SERVICE_ENDPOINT", "CRI_CONFIG_FILE"}

func main() {
	if os.Getenv(envChild) == "1" {
		if err := fallbackChild(); err != nil {
			fmt.Fprintf(os.Stderr, "bench/kcrictl (mount namespace): %v\n", err)
			os.Exit(1)
		}
		return
	}
	binDir := flag.String("bin", "bin", "directory with the built kcrictl")
	crictl := flag.String("crictl", ".tools/bin/crictl", "crictl binary (built by `make deps`)")
	version := flag.String("containerd", "1.6", "containerd version: 1.6 or 2.4")
	runs := flag.Int("runs", 15, "runs per variant")
	pods := flag.Int("pods", 5, "pod sandboxes (host network)")
	perPod := flag.Int("containers-per-pod", 10, "running busybox containers per pod")
	flag.Parse()
	if *runs < 1 || *pods < 1 || *perPod < 0 {
		fmt.Fprintln(os.Stderr, "bench/kcrictl: --runs and --pods must be at least 1, --containers-per-pod at least 0")
		os.Exit(2)
	}
	if err := run(*binDir, *crictl, *version, *runs, *pods, *perPod); err != nil {
		fmt.Fprintf(os.Stderr, "bench/kcrictl: %v\n", err)
		os.Exit(1)
	}
}

// tool resolves a binary the bench runs and fails clearly when it is absent.
func tool(path, hint string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: no executable here (%s)", abs, hint)
	}
	return abs, nil
}

func run(binDir, crictlPath, version string, runs, pods, perPod int) (err error) {
	kcrictl, err := tool(filepath.Join(binDir, "kcrictl"), "build it with `CGO_ENABLED=0 go build -o bin/ ./cmd/kcrictl` or `make build`, or pass --bin")
	if err != nil {
		return err
	}
	crictl, err := tool(crictlPath, "run `make deps`, or pass --crictl")
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return errors.New("unshare(1) not found (util-linux): needed for the default-endpoint case")
	}
	for _, k := range endpointEnv {
		os.Unsetenv(k)
	}
	// Ctrl-C or SIGTERM stops the bench between commands and still runs
	// the cleanup below: the daemon's Stop removes the 50 containers, which
	// would otherwise outlive it (its shims are not its children).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Images, built offline and served by an in-process registry.
	registry := testenv.StartRegistry(testenv.RegistryOptions{})
	defer registry.Close()
	images, err := testimages.NewBuilder("").PushPodImages(ctx, registry.Host(), "kcrictl-bench")
	if err != nil {
		return err
	}
	busyboxRef, pauseRef := images.Busybox, images.Pause

	work, err := os.MkdirTemp("", "kcb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := testenv.WritePlainHTTPHost(filepath.Join(work, "hosts"), registry.Host()); err != nil {
		return err
	}
	emptyCfg := filepath.Join(work, "crictl.yaml")
	if err := os.WriteFile(emptyCfg, nil, 0o644); err != nil {
		return err
	}

	// Host-network pods: no CNI network, no bridge to clean up. The empty
	// CNI conf dir is the daemon's own (under its Dir).
	daemon, err := testenv.StartContainerd(ctx, testenv.ContainerdOptions{
		Version: version, EnableCRI: true, SandboxImage: pauseRef, HostsDir: filepath.Join(work, "hosts"),
	})
	if err != nil {
		return err
	}
	// The kubelet always sets a cgroup parent; ours is removed once the
	// daemon's Stop has torn the pods down.
	cgParent := "/kcrictl-bench-" + filepath.Base(work)
	defer func() {
		if e := daemon.Stop(); e != nil && err == nil {
			err = e
		}
		if e := testenv.RemoveCgroup(cgParent); e != nil && err == nil {
			err = e
		}
	}()
	sock := daemon.Address()
	ep := "unix://" + sock

	t0 := time.Now()
	n, err := setup(ctx, ep, pauseRef, busyboxRef, cgParent, pods, perPod)
	if err != nil {
		return fmt.Errorf("setup: %w\n--- containerd log (tail) ---\n%s", err, daemon.LogTail(30))
	}
	fmt.Printf("containerd %s with CRI, %d host-network pods, %d running containers (setup %.1fs), %d runs each (interleaved); load average %s\n",
		daemon.DaemonVersion(), pods, n, time.Since(t0).Seconds(), runs, measure.LoadAverage())
	fmt.Printf("kcrictl %s\ncrictl  %s\n", kcrictl, crictl)

	// Both tools must list every container and pod before we time them.
	for _, bin := range []string{kcrictl, crictl} {
		if err := expectCount(n, bin, "-r", ep, "-c", emptyCfg, "ps", "-q"); err != nil {
			return err
		}
		if err := expectCount(pods, bin, "-r", ep, "-c", emptyCfg, "pods", "-q"); err != nil {
			return err
		}
	}
	with := func(bin string, args ...string) []string {
		return append([]string{bin, "-r", ep, "-c", emptyCfg}, args...)
	}
	variants := []variant{
		{"kcrictl -r ... ps", with(kcrictl, "ps")},
		{"crictl -r ... ps", with(crictl, "ps")},
		{"kcrictl -r ... pods", with(kcrictl, "pods")},
		{"crictl -r ... pods", with(crictl, "pods")},
		// Start-up alone, no CRI call: the floor under both cases.
		{"kcrictl --version", []string{kcrictl, "--version"}},
		{"crictl --version", []string{crictl, "--version"}},
	}
	m, err := timeInterleaved(ctx, variants, runs)
	if err != nil {
		return err
	}
	measure.Ratio("ratio kcrictl/crictl ps (≤ 0.8)", m[0], m[1])
	measure.Ratio("ratio kcrictl/crictl pods (≤ 0.8)", m[2], m[3])
	measure.Ratio("ratio start-up only (no target)", m[4], m[5])

	// No endpoint: only /var/run/cri-dockerd.sock (a bind mount of the
	// daemon's socket) in a private mount namespace.
	if err := runFallbackChild(ctx, kcrictl, crictl, sock, runs, n); err != nil {
		return err
	}
	fmt.Printf("load average at the end: %s\n", measure.LoadAverage())
	return nil
}

// setup pulls the images and starts pods × perPod `sleep` containers
// through the CRI API, and returns how many containers are running.
func setup(ctx context.Context, ep, pauseRef, busyboxRef, cgParent string, pods, perPod int) (int, error) {
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	is := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	// The CRI plugin starts serving shortly after the daemon answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("CRI never answered Version: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, ref := range []string{pauseRef, busyboxRef} {
		if _, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			return 0, fmt.Errorf("pull %s: %w", ref, err)
		}
	}
	for p := range pods {
		podCfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bench-%d", p), Namespace: "kcrictl-bench", Uid: fmt.Sprintf("kcrictl-bench-%d", p)},
			Labels:   map[string]string{"bench": "kcrictl"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: cgParent,
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
				},
			},
		}
		pod, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		if err != nil {
			return 0, fmt.Errorf("run pod %d: %w", p, err)
		}
		for c := range perPod {
			name := fmt.Sprintf("sleep-%d", c)
			ctr, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
				PodSandboxId: pod.PodSandboxId,
				Config: &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: name},
					Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
					Command:  []string{"sleep", "86400"},
					Labels: map[string]string{
						"io.kubernetes.pod.name":      podCfg.Metadata.Name,
						"io.kubernetes.pod.namespace": podCfg.Metadata.Namespace,
					},
					Linux: &runtimeapi.LinuxContainerConfig{},
				},
				SandboxConfig: podCfg,
			})
			if err != nil {
				return 0, fmt.Errorf("create %s in pod %d: %w", name, p, err)
			}
			if _, err := rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
				return 0, fmt.Errorf("start %s in pod %d: %w", name, p, err)
			}
		}
	}
	list, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}},
	})
	if err != nil {
		return 0, err
	}
	if n := len(list.Containers); n != pods*perPod {
		return 0, fmt.Errorf("%d containers running, want %d", n, pods*perPod)
	}
	return len(list.Containers), nil
}

// variant is one command line to time.
type variant struct {
	name string
	argv []string
}

// timeInterleaved runs each variant once to warm up (page cache, the
// runtime's first answers), then runs them in turn, runs times, and
// prints each one's median. It returns the medians in order.
func timeInterleaved(ctx context.Context, variants []variant, runs int) ([]time.Duration, error) {
	for _, v := range variants {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if _, err := measure.Command(v.argv...); err != nil {
			return nil, err
		}
	}
	samples := make([][]time.Duration, len(variants))
	for range runs {
		for i, v := range variants {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			d, err := measure.Command(v.argv...)
			if err != nil {
				return nil, err
			}
			samples[i] = append(samples[i], d)
		}
	}
	medians := make([]time.Duration, len(variants))
	for i, v := range variants {
		medians[i] = measure.Report(v.name, samples[i])
	}
	return medians, nil
}

// expectCount runs argv (a `-q` listing) and checks it prints want IDs.
func expectCount(want int, argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr)
	}
	if got := len(strings.Fields(string(out))); got != want {
		return fmt.Errorf("%s listed %d, want %d:\n%s", strings.Join(argv, " "), got, want, out)
	}
	return nil
}
