package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kctr/kctr/images"
)

// PullPolicy says when run/create fetch the image.
type PullPolicy string

const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// ParsePullPolicy accepts Docker's --pull values; empty means missing.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case "":
		return PullMissing, nil
	case PullMissing, PullAlways, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("invalid pull policy %q (want always, missing or never): %w", s, errdefs.ErrInvalidArgument)
}

// CreateOptions describe a container to create.
type CreateOptions struct {
	Image string
	// Args replace the image's Cmd (its Entrypoint stays).
	Args []string
	// Name must be unique in the namespace; empty leaves the container
	// known by its ID only.
	Name       string
	Env        []string
	WorkingDir string
	// Hostname defaults to the short container ID, as Docker does.
	Hostname string
	// Network is bridge (default), host or none.
	Network string
	// Ports are published on the host (bridge network only).
	Ports []PortMapping
	// Entrypoint replaces the image's; its CMD is then dropped.
	Entrypoint []string
	// User is name|uid[:group|gid], resolved in the image.
	User      string
	Mounts    []Mount
	Resources Resources
	Security  SecurityOptions
	// Platform selects the image variant to pull and run.
	Platform string
	// Restart is a policy for containerd's restart monitor (see restart.go).
	Restart string
	// Init runs the command under kctr's init (see init.go).
	Init        bool
	TTY         bool
	Labels      map[string]string
	OOMScoreAdj *int
	Pull        PullPolicy
	PullOptions images.PullOptions
}

// Create makes a container with a fresh snapshot of the image's rootfs and
// its network. On error nothing is left behind: no container record, no
// snapshot, no network namespace or IP.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (containerd.Container, error) {
	container, network, err := m.create(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := network.finish(ctx, container); err != nil {
		_ = m.destroy(context.WithoutCancel(ctx), container, nil)
		return nil, err
	}
	return container, nil
}

// networkSetup is what create leaves to do for a bridge network: CNI ADD
// runs while the caller goes on making the task, and finish collects it.
type networkSetup struct {
	pending  *pendingAttach
	dir      string
	hostname string
}

// finish waits for the network and records the container's IP in its
// /etc/hosts and labels; it must be done before the task starts.
func (n *networkSetup) finish(ctx context.Context, container containerd.Container) error {
	if n == nil || n.pending == nil {
		return nil
	}
	ip, err := n.pending.wait()
	if err != nil {
		return err
	}
	if err := writeHostsFile(n.dir, n.hostname, ip); err != nil {
		return fmt.Errorf("write /etc/hosts of %s: %w", shortID(container.ID()), err)
	}
	if _, err := container.SetLabels(ctx, map[string]string{LabelIP: ip}); err != nil {
		return fmt.Errorf("record IP of %s: %w", shortID(container.ID()), err)
	}
	return nil
}

// create does Create's work but leaves the network to finish. On error it
// has undone everything itself.
func (m *Manager) create(ctx context.Context, opts CreateOptions) (_ containerd.Container, _ *networkSetup, retErr error) {
	networkMode, err := ParseNetworkMode(opts.Network)
	if err != nil {
		return nil, nil, err
	}
	if len(opts.Ports) > 0 && networkMode != NetworkBridge {
		return nil, nil, fmt.Errorf("publishing ports needs the bridge network, not --net %s: %w", networkMode, errdefs.ErrInvalidArgument)
	}
	if opts.Name != "" {
		if err := validateName(opts.Name); err != nil {
			return nil, nil, err
		}
		if err := m.checkNameFree(ctx, opts.Name); err != nil {
			return nil, nil, err
		}
	}
	pullOpts := opts.PullOptions
	if opts.Platform != "" {
		pullOpts.Platform = opts.Platform
	}
	image, err := m.ensureImage(ctx, opts.Image, opts.Pull, pullOpts)
	if err != nil {
		return nil, nil, err
	}
	floor, restricted, err := OOMScoreAdjFloor()
	if err != nil {
		return nil, nil, err
	}

	id := newID()
	hostname := opts.Hostname
	if hostname == "" {
		hostname = shortID(id)
	}
	if networkMode == NetworkHost && opts.Hostname == "" {
		if hostname, err = os.Hostname(); err != nil {
			return nil, nil, fmt.Errorf("host name: %w", err)
		}
	}
	specOpts := []oci.SpecOpts{oci.WithDefaultSpec(), oci.WithDefaultUnixDevices, oci.WithHostname(hostname)}
	if len(opts.Args) > 0 {
		specOpts = append(specOpts, oci.WithImageConfigArgs(image, opts.Args))
	} else {
		specOpts = append(specOpts, oci.WithImageConfig(image))
	}
	if len(opts.Env) > 0 {
		specOpts = append(specOpts, oci.WithEnv(opts.Env))
	}
	if opts.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(opts.WorkingDir))
	}
	if opts.TTY {
		specOpts = append(specOpts, oci.WithTTY)
	}
	extra, err := optionSpecOpts(opts)
	if err != nil {
		return nil, nil, err
	}
	specOpts = append(specOpts, extra...)
	if opts.Init {
		// The init is this executable itself (kctr answers
		// IsInitInvocation), not the log writer, which may be the small
		// kctr-logwriter.
		executable, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("find own executable for --init: %w", err)
		}
		if err := checkStatic(executable); err != nil {
			return nil, nil, err
		}
		specOpts = append(specOpts, withInit(executable))
	}
	if opts.OOMScoreAdj != nil {
		adj := *opts.OOMScoreAdj
		specOpts = append(specOpts, func(_ context.Context, _ oci.Client, _ *containers.Container, spec *oci.Spec) error {
			spec.Process.OOMScoreAdj = &adj
			return nil
		})
	}
	specOpts = append(specOpts, WithClampedOOMScoreAdj(floor, restricted))

	namespace, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]string{}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	labels[LabelLogPath] = m.logPath(namespace, id)
	restartPolicy, err := ParseRestartPolicy(opts.Restart)
	if err != nil {
		return nil, nil, err
	}
	restartLabels, err := m.restartLabels(restartPolicy, labels[LabelLogPath])
	if err != nil {
		return nil, nil, err
	}
	for k, v := range restartLabels {
		labels[k] = v
	}

	setup := &networkSetup{dir: m.containerDir(namespace, id), hostname: hostname}
	switch networkMode {
	case NetworkHost:
		specOpts = append(specOpts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	case NetworkBridge:
		ports, err := assignHostPorts(opts.Ports)
		if err != nil {
			return nil, nil, err
		}
		pending, err := m.bridge.startAttach(ctx, id, ports)
		if err != nil {
			return nil, nil, err
		}
		setup.pending = pending
		for k, v := range pending.labels() {
			labels[k] = v
		}
		defer func() {
			if retErr != nil {
				m.bridge.abort(context.WithoutCancel(ctx), pending)
			}
		}()
		specOpts = append(specOpts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pending.nsPath}))
	}
	if networkMode != NetworkHost {
		files, err := withNetworkFiles(setup.dir, hostname, "")
		if err != nil {
			return nil, nil, err
		}
		specOpts = append(specOpts, files)
		defer func() {
			if retErr != nil {
				_ = os.RemoveAll(m.containerDir(namespace, id))
			}
		}()
	}
	if opts.Name != "" {
		labels[LabelName] = opts.Name
	}
	container, err := m.client.NewContainer(ctx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(m.images.Snapshotter()),
		containerd.WithNewSnapshot(id, image),
		containerd.WithImageStopSignal(image, "SIGTERM"),
		containerd.WithRuntime(m.runtime, m.runtimeOptions),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(labels),
	)
	if err != nil {
		// NewContainer made the snapshot before failing on the record or spec.
		_ = m.client.SnapshotService(m.images.Snapshotter()).Remove(context.WithoutCancel(ctx), id)
		return nil, nil, fmt.Errorf("create container from %s: %w", opts.Image, err)
	}
	return container, setup, nil
}

// ensureImage returns the image unpacked for our snapshotter, pulling it
// as the policy allows.
func (m *Manager) ensureImage(ctx context.Context, ref string, policy PullPolicy, pullOpts images.PullOptions) (containerd.Image, error) {
	name, err := images.NormalizeName(ref)
	if err != nil {
		return nil, err
	}
	if policy == "" {
		policy = PullMissing
	}
	image, err := m.client.GetImage(ctx, name)
	switch {
	case err == nil && policy != PullAlways:
	case err != nil && !errdefs.IsNotFound(err):
		return nil, fmt.Errorf("look up image %s: %w", name, err)
	case err != nil && policy == PullNever:
		return nil, fmt.Errorf("image %s is not present and --pull=never: %w", name, errdefs.ErrNotFound)
	default:
		if _, err := m.images.Pull(ctx, name, pullOpts); err != nil {
			return nil, err
		}
		if image, err = m.client.GetImage(ctx, name); err != nil {
			return nil, fmt.Errorf("look up image %s after pull: %w", name, err)
		}
	}
	if pullOpts.Platform != "" {
		platform, err := platforms.Parse(pullOpts.Platform)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %v: %w", pullOpts.Platform, err, errdefs.ErrInvalidArgument)
		}
		image = containerd.NewImageWithPlatform(m.client, image.Metadata(), platforms.Only(platform))
	}
	unpacked, err := image.IsUnpacked(ctx, m.images.Snapshotter())
	if err != nil {
		return nil, fmt.Errorf("check image %s: %w", name, err)
	}
	if !unpacked {
		if err := image.Unpack(ctx, m.images.Snapshotter()); err != nil {
			return nil, fmt.Errorf("unpack image %s: %w", name, err)
		}
	}
	return image, nil
}

func (m *Manager) checkNameFree(ctx context.Context, name string) error {
	existing, err := m.client.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelName, name))
	if err != nil {
		return fmt.Errorf("check container name %q: %w", name, err)
	}
	if len(existing) > 0 {
		return fmt.Errorf("container name %q is already in use by %s: %w", name, shortID(existing[0].ID()), errdefs.ErrAlreadyExists)
	}
	return nil
}

// validateName applies Docker's rule for container names.
func validateName(name string) error {
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && strings.ContainsRune("_.-", c)
		if !ok {
			return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
