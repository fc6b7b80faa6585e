package main

import (
	"context"
	"fmt"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"github.com/urfave/cli/v2"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/images"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "config",
			Usage:   "TOML file with defaults for these options",
			EnvVars: []string{"KCTR_CONFIG"},
			Value:   defaultConfigPath,
		},
		&cli.StringFlag{
			Name:    "address",
			Aliases: []string{"a", "H"},
			Usage:   "containerd socket",
			EnvVars: []string{"CONTAINERD_ADDRESS"},
			Value:   defaults.DefaultAddress,
		},
		&cli.StringFlag{
			Name:    "namespace",
			Aliases: []string{"n"},
			Usage:   "containerd namespace (k8s.io holds what Kubernetes runs)",
			EnvVars: []string{"CONTAINERD_NAMESPACE"},
			Value:   namespaces.Default,
		},
		&cli.StringFlag{
			Name:    "snapshotter",
			Usage:   "snapshotter images are unpacked into",
			EnvVars: []string{"CONTAINERD_SNAPSHOTTER"},
			Value:   defaults.DefaultSnapshotter,
		},
		&cli.StringFlag{
			Name:  "hosts-dir",
			Usage: "registry hosts directory in containerd's certs.d layout (mirrors, CAs, plain HTTP)",
			Value: "/etc/containerd/certs.d",
		},
		&cli.BoolFlag{
			Name:  "insecure-registry",
			Usage: "skip TLS verification and allow plain HTTP for registries",
		},
		&cli.StringFlag{
			Name:  "data-root",
			Usage: "where kctr keeps container logs",
			Value: containers.DefaultDataRoot,
		},
		&cli.StringSliceFlag{
			Name:  "cni-path",
			Usage: "directories with CNI plugins",
			Value: cli.NewStringSlice("/usr/lib/cni", "/opt/cni/bin"),
		},
		&cli.StringFlag{
			Name:  "cni-netconfpath",
			Usage: "directory with kctr's CNI network config (a bridge network is written there when empty)",
			Value: containers.DefaultCNIConfDir,
		},
		&cli.StringFlag{Name: "bridge-name", Usage: "bridge of the default network", Value: containers.DefaultBridgeName},
		&cli.StringFlag{Name: "netns-dir", Usage: "where containers' network namespaces are mounted", Value: containers.DefaultNetNSDir},
		&cli.StringFlag{Name: "bridge-subnet", Usage: "subnet of the default network", Value: containers.DefaultSubnet},
		&cli.BoolFlag{Name: "debug", Usage: "print more about what kctr does"},
	}
}

// session is what every command needs: a connected client and a context
// carrying the namespace. Close it when done.
type session struct {
	ctx        context.Context
	cancel     context.CancelFunc
	client     *containerd.Client
	images     *images.Service
	containers *containers.Manager
}

func (s *session) Close() {
	s.cancel()
	_ = s.client.Close()
}

const connectTimeout = 10 * time.Second

func newSession(c *cli.Context) (*session, error) {
	// containerd's client logs every registry fallback at info level; a
	// CLI user wants those only when asking for them.
	logLevel := "warn"
	if c.Bool("debug") {
		logLevel = "debug"
	}
	_ = log.SetLevel(logLevel)
	address := c.String("address")
	if _, err := os.Stat(address); err != nil {
		return nil, fmt.Errorf("cannot reach containerd at %s: %v (is containerd running? set --address or CONTAINERD_ADDRESS)", address, err)
	}
	namespace := c.String("namespace")
	if err := identifiers.Validate(namespace); err != nil {
		return nil, fmt.Errorf("namespace %q: %w", namespace, err)
	}
	client, err := containerd.New(address, containerd.WithTimeout(connectTimeout), containerd.WithDefaultNamespace(namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(c.Context, namespace))
	if err := checkNamespace(ctx, client, c, namespace); err != nil {
		cancel()
		client.Close()
		return nil, err
	}
	imageService := images.NewService(client, images.ServiceOptions{
		Snapshotter: c.String("snapshotter"),
		Registry: images.RegistryOptions{
			HostsDir: c.String("hosts-dir"),
			Insecure: c.Bool("insecure-registry"),
		},
		UnpackInProcess: func() (bool, error) { return images.SharesDaemonFilesystem(address) },
	})
	return &session{
		ctx:    ctx,
		cancel: cancel,
		client: client,
		images: imageService,
		containers: containers.NewManager(client, imageService, containers.ManagerOptions{
			DataRoot: c.String("data-root"),
			Network: containers.NetworkOptions{
				CNIBinDirs: c.StringSlice("cni-path"),
				ConfDir:    c.String("cni-netconfpath"),
				BridgeName: c.String("bridge-name"),
				Subnet:     c.String("bridge-subnet"),
				NetNSDir:   c.String("netns-dir"),
			},
		}),
	}, nil
}

// Commands that make things in a namespace create it, as containerd does;
// every other command names a namespace that does not exist instead of
// quietly showing nothing (a mistyped -n k8s.oi).
var namespaceCreators = map[string]bool{"run": true, "create": true, "pull": true, "load": true, "tag": true, "namespace": true, "login": true, "logout": true, "version": true, "info": true}

func checkNamespace(ctx context.Context, client *containerd.Client, c *cli.Context, namespace string) error {
	if namespace == namespaces.Default {
		return nil
	}
	for _, name := range c.Lineage() {
		if name.Command != nil && namespaceCreators[name.Command.Name] {
			return nil
		}
	}
	existing, err := client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range existing {
		if ns == namespace {
			return nil
		}
	}
	return fmt.Errorf("namespace %q does not exist (kctr namespace ls lists them)", namespace)
}
