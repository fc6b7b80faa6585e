// Command kubelet-lite keeps static pods (manifest files) running through a
// CRI runtime, like the kubelet without an API server. This file only
// parses flags and wires the kubelet package; `kubelet-lite status` reads
// the agent's /pods endpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	remote "k8s.io/cri-client/pkg"

	"github.com/kctr/kctr/endpoints"
	"github.com/kctr/kctr/kubelet"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-lite:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "kubelet-lite",
		Usage: "keep static pods from a manifest dir running through a CRI runtime",
		Flags: agentFlags(),
		Action: func(c *cli.Context) error {
			opts, err := agentOptionsFrom(c)
			if err != nil {
				return err
			}
			return runAgent(opts)
		},
		Commands: []*cli.Command{statusCommand()},
	}
}

func agentFlags() []cli.Flag {
	hostname, _ := os.Hostname()
	return []cli.Flag{
		&cli.StringFlag{Name: "manifests", Value: kubelet.DefaultManifestDir, Usage: "directory of pod manifests (YAML or JSON)"},
		&cli.StringFlag{Name: "runtime-endpoint", Usage: "CRI runtime endpoint (default: $CONTAINER_RUNTIME_ENDPOINT, crictl.yaml, then the default list)"},
		&cli.StringFlag{Name: "image-endpoint", Usage: "CRI image endpoint (default: the runtime endpoint)"},
		&cli.StringFlag{Name: "root-dir", Value: kubelet.DefaultRootDir, Usage: "directory for pod state (emptyDir volumes)"},
		&cli.StringFlag{Name: "pod-logs-dir", Value: kubelet.DefaultPodLogsDir, Usage: "directory for container logs"},
		&cli.StringFlag{Name: "node-name", Value: hostname, Usage: "node name (part of every pod UID)"},
		&cli.StringFlag{Name: "node-ip", Usage: "node IP: pods' hostIP and host-network pods' IP (default: the address of the default route)"},
		&cli.DurationFlag{Name: "sync-frequency", Value: kubelet.DefaultSyncFrequency, Usage: "period of full pod resyncs"},
		&cli.DurationFlag{Name: "relist-period", Value: kubelet.DefaultRelistPeriod, Usage: "period of runtime relists when the runtime has no container events"},
		&cli.DurationFlag{Name: "file-check-frequency", Value: kubelet.DefaultFileCheckFrequency, Usage: "period of manifest dir checks"},
		&cli.StringFlag{Name: "http-addr", Value: kubelet.DefaultHTTPAddr, Usage: "read-only HTTP address (/healthz, /pods); empty disables"},
		&cli.BoolFlag{Name: "remove-foreign", Usage: "remove sandboxes and containers kubelet-lite did not create"},
		&cli.DurationFlag{Name: "backoff-initial", Value: kubelet.DefaultBackoffInitial, Usage: "first CrashLoopBackOff delay"},
		&cli.DurationFlag{Name: "backoff-max", Value: kubelet.DefaultBackoffMax, Usage: "longest CrashLoopBackOff delay"},
		&cli.DurationFlag{Name: "backoff-reset", Value: kubelet.DefaultBackoffReset, Usage: "running this long resets the back-off"},
		&cli.DurationFlag{Name: "runtime-request-timeout", Value: 2 * time.Minute, Usage: "timeout of each CRI call"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
	}
}

// agentOptions are the parsed flags.
type agentOptions struct {
	endpoints      endpoints.Options
	config         kubelet.Config
	httpAddr       string
	requestTimeout time.Duration
	logLevel       slog.Level
}

func agentOptionsFrom(c *cli.Context) (agentOptions, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return agentOptions{}, fmt.Errorf("--log-level: %w", err)
	}
	if c.String("node-name") == "" {
		return agentOptions{}, errors.New("--node-name is empty and the hostname is unknown")
	}
	return agentOptions{
		endpoints: endpoints.Options{RuntimeEndpoint: c.String("runtime-endpoint"), ImageEndpoint: c.String("image-endpoint")},
		config: kubelet.Config{
			ManifestDir:        c.String("manifests"),
			RootDir:            c.String("root-dir"),
			PodLogsDir:         c.String("pod-logs-dir"),
			NodeName:           c.String("node-name"),
			NodeIP:             c.String("node-ip"),
			SyncFrequency:      c.Duration("sync-frequency"),
			RelistPeriod:       c.Duration("relist-period"),
			FileCheckFrequency: c.Duration("file-check-frequency"),
			RemoveForeign:      c.Bool("remove-foreign"),
			Backoff: kubelet.Backoff{
				Initial: c.Duration("backoff-initial"), Max: c.Duration("backoff-max"), Reset: c.Duration("backoff-reset"),
			},
		},
		httpAddr:       c.String("http-addr"),
		requestTimeout: c.Duration("runtime-request-timeout"),
		logLevel:       level,
	}, nil
}

// runAgent resolves the endpoints, serves HTTP and runs the agent until
// SIGTERM or SIGINT, which leave the pods running.
func runAgent(opts agentOptions) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	res, err := endpoints.Resolve(ctx, opts.endpoints)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		logger.Warn(w)
	}
	runtimeEndpoint, imageEndpoint := res.Runtime.Endpoint, res.Image.Endpoint
	_ = res.Close()
	logger.Info("CRI endpoints", "runtime", runtimeEndpoint, "image", imageEndpoint, "reason", res.Reason)

	rt, err := remote.NewRemoteRuntimeService(ctx, runtimeEndpoint, opts.requestTimeout, nil, false)
	if err != nil {
		return fmt.Errorf("connect runtime %s: %w", runtimeEndpoint, err)
	}
	images, err := remote.NewRemoteImageService(ctx, imageEndpoint, opts.requestTimeout, nil, false)
	if err != nil {
		return fmt.Errorf("connect image service %s: %w", imageEndpoint, err)
	}
	cfg := opts.config
	cfg.Runtime, cfg.Images, cfg.Logger = rt, images, logger
	agent, err := kubelet.New(cfg)
	if err != nil {
		return err
	}
	if opts.httpAddr != "" {
		l, err := net.Listen("tcp", opts.httpAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", opts.httpAddr, err)
		}
		srv := &http.Server{Handler: agent.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		logger.Info("serving", "http", "http://"+l.Addr().String())
	}
	return agent.Run(ctx)
}
