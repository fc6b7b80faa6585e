package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/criclient"
	"github.com/kctr/kctr/endpoints"
)

// Config is everything a kcrictl run needs, carried in App.Metadata (no
// package globals). Tests build one with fake services and writers.
type Config struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Endpoints is filled from the global flags before a command runs.
	Endpoints endpoints.Options
	// CallTimeout bounds unary CRI calls (--timeout; config file timeout).
	CallTimeout time.Duration
	Debug       bool

	// RuntimeService and ImageService, when set, are used instead of
	// resolving endpoints (tests inject fakes here).
	RuntimeService runtimeapi.RuntimeServiceClient
	ImageService   runtimeapi.ImageServiceClient
	// FileConfig is the loaded config file (pull-image-on-create, ...).
	FileConfig *endpoints.Config

	res *endpoints.Resolution
}

func defaultConfig() *Config {
	return &Config{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

func configFrom(c *cli.Context) *Config {
	return c.App.Metadata[metadataKey].(*Config)
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "location of the client config file (default $CRI_CONFIG_FILE, then /etc/crictl.yaml)"},
		&cli.BoolFlag{Name: "debug", Aliases: []string{"D"}, Usage: "log every CRI call to stderr"},
		&cli.StringFlag{Name: "image-endpoint", Aliases: []string{"i"}, Usage: "endpoint of the CRI image service (default: the runtime endpoint; $IMAGE_SERVICE_ENDPOINT)"},
		&cli.StringFlag{Name: "runtime-endpoint", Aliases: []string{"r"}, Usage: "endpoint of the CRI runtime service (default: try the default list; $CONTAINER_RUNTIME_ENDPOINT)"},
		&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: endpoints.DefaultTimeout, Usage: "timeout of connecting to the server and of each call, e.g. 2s"},
		&cli.BoolFlag{Name: "legacy-default-endpoints", Usage: "try the pre-1.24 default endpoints (dockershim first)"},
		&cli.BoolFlag{Name: "allow-tcp", Usage: "accept tcp://host:port endpoints (unauthenticated, unencrypted)"},
	}
}

// applyGlobalFlags copies the global flags into the endpoint options.
// Explicit values set by a test are kept when the flag is absent.
func (cfg *Config) applyGlobalFlags(c *cli.Context) error {
	o := &cfg.Endpoints
	if c.IsSet("runtime-endpoint") {
		o.RuntimeEndpoint = c.String("runtime-endpoint")
	}
	if c.IsSet("image-endpoint") {
		o.ImageEndpoint = c.String("image-endpoint")
	}
	if c.IsSet("config") {
		o.ConfigPath = c.String("config")
	}
	if c.IsSet("timeout") {
		if c.Duration("timeout") <= 0 {
			return fmt.Errorf("--timeout must be positive, got %s", c.Duration("timeout"))
		}
		o.Timeout = c.Duration("timeout")
		cfg.CallTimeout = o.Timeout
	}
	o.LegacyDefaults = o.LegacyDefaults || c.Bool("legacy-default-endpoints")
	o.AllowTCP = o.AllowTCP || c.Bool("allow-tcp")
	cfg.Debug = cfg.Debug || c.Bool("debug")
	// Always installed: debug may also come from the config file, which
	// is only read during resolution.
	o.DialOptions = append(o.DialOptions, grpc.WithChainUnaryInterceptor(cfg.debugInterceptor))
	return nil
}

func (cfg *Config) debugInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !cfg.Debug {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	fmt.Fprintf(cfg.Stderr, "DEBU %s %s request: %v response: %v err: %v (%s)\n",
		cc.Target(), method, req, reply, err, time.Since(start).Round(time.Microsecond))
	return err
}

// client connects (or uses the injected services) and prints the
// resolution's warnings, as crictl warns about default endpoints.
func (cfg *Config) client(c *cli.Context) (*criclient.Client, error) {
	if cfg.RuntimeService != nil || cfg.ImageService != nil {
		if cfg.FileConfig == nil {
			fc, err := endpoints.LoadConfig(configPath(c))
			if errors.Is(err, fs.ErrNotExist) {
				fc, err = &endpoints.Config{}, nil
			}
			if err != nil {
				return nil, err
			}
			cfg.FileConfig = fc
		}
		return criclient.New(cfg.RuntimeService, cfg.ImageService, cfg.CallTimeout), nil
	}
	cl, res, err := criclient.Connect(c.Context, cfg.Endpoints, cfg.CallTimeout)
	if err != nil {
		return nil, err
	}
	cfg.res = res
	cfg.FileConfig = res.Config
	if res.Config.Debug && !cfg.Debug {
		cfg.Debug = true
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(cfg.Stderr, "WARN %s\n", w)
	}
	if cfg.Debug {
		fmt.Fprintf(cfg.Stderr, "DEBU using runtime endpoint %s (%s), image endpoint %s (%s)\n",
			res.Runtime.Endpoint, res.Reason, res.Image.Endpoint, res.Image.Source)
	}
	return cl, nil
}

func (cfg *Config) close() {
	if cfg.res != nil {
		cfg.res.Close()
		cfg.res = nil
	}
}

// clientFrom is configFrom(c).client(c).
func clientFrom(c *cli.Context) (*criclient.Client, error) { return configFrom(c).client(c) }

// needArgs checks the positional argument count.
func needArgs(c *cli.Context, min int, usage string) error {
	if c.NArg() < min {
		return fmt.Errorf("%s: %s", c.Command.Name, usage)
	}
	return nil
}

// applyEach runs op on every ID and prints format (with the ID) after each
// success. Like crictl it goes on past a failure, reports it, and fails at
// the end.
func applyEach(c *cli.Context, ids []string, format string, op func(id string) error) error {
	return criclient.ForEach(ids, errOut(c), func(id string) error {
		if err := op(id); err != nil {
			return err
		}
		fmt.Fprintf(out(c), format+"\n", id)
		return nil
	})
}
