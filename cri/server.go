package cri

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/containers"
	"github.com/kctr/kctr/images"
	"github.com/kctr/kctr/network"
)

// Server is kcrid: the CRI services on one gRPC server, backed by one
// containerd client.
type Server struct {
	client  *containerd.Client
	runtime *runtimeService
	images  *imageService
	grpc    *grpc.Server

	stopEvents context.CancelFunc
	eventsDone chan struct{}
	stopOnce   sync.Once
}

// New connects to containerd, rebuilds the index of sandboxes and
// containers from it (restart.go) and starts following task exits
// (events.go). It does not listen yet: see Serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.RootDir, cfg.StateDir, cfg.netnsDir(), cfg.fifoDir()} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	client, err := containerd.New(cfg.ContainerdAddress, containerd.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.ContainerdAddress, err)
	}
	ok := false
	defer func() {
		if !ok {
			client.Close()
		}
	}()
	ctx = namespaces.WithNamespace(ctx, cfg.Namespace)
	if _, err := client.Version(ctx); err != nil {
		return nil, fmt.Errorf("containerd at %s: %w", cfg.ContainerdAddress, err)
	}
	netManager, err := network.NewManager(network.Options{BinDirs: cfg.CNIBinDirs, ConfDir: cfg.CNIConfDir})
	if err != nil {
		return nil, err
	}
	floor, restricted, err := containers.OOMScoreAdjFloor()
	if err != nil {
		return nil, err
	}
	imageSvc := newImageService(client, images.NewService(client, images.ServiceOptions{
		Snapshotter:     cfg.Snapshotter,
		Registry:        images.RegistryOptions{HostsDir: cfg.HostsDir},
		UnpackInProcess: func() (bool, error) { return images.SharesDaemonFilesystem(cfg.ContainerdAddress) },
	}), cfg.SandboxImage)
	creations, err := newCreationLease(ctx, client, imageSvc.images.Snapshotter())
	if err != nil {
		return nil, err
	}
	features, featuresErr := readRuncFeatures(ctx, cfg.Runtime.BinaryName)
	rt := &runtimeService{
		cfg:        cfg,
		client:     client,
		sandboxes:  newIndex[*sandbox]("pod sandbox"),
		containers: newIndex[*container]("container"),
		network:    netManager,
		images:     imageSvc,
		oom:        oomPolicy{floor: floor, restricted: restricted},
		creations:  creations,
		userns:     probeUserNamespaces(ctx, client, features, featuresErr, imageSvc.images.Snapshotter()),

		recursiveReadOnly: recursiveReadOnlyMounts(ctx, features),
		sandboxRecords:    probeSandboxRecords(ctx, client),
	}

	// The streaming server listens before recovery so a bad address
	// fails New before any FIFO is reopened.
	if rt.streams, err = newStreamServer(cfg, streamer{r: rt}); err != nil {
		return nil, err
	}
	eventsCtx, stopEvents := context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), cfg.Namespace))
	ch, errs := rt.subscribe(eventsCtx)
	if err := rt.recoverState(ctx); err != nil {
		stopEvents()
		_ = rt.streams.listener.Close()
		rt.closeContainerIO()
		return nil, err
	}
	// NRI starts on the recovered index: its first Synchronize lists it.
	if rt.nri, err = startNRI(cfg.NRI, rt); err != nil {
		stopEvents()
		_ = rt.streams.listener.Close()
		rt.closeContainerIO()
		return nil, err
	}
	go rt.streams.serve()
	s := &Server{
		client:     client,
		runtime:    rt,
		images:     imageSvc,
		stopEvents: stopEvents,
		eventsDone: make(chan struct{}),
	}
	go func() {
		defer close(s.eventsDone)
		rt.handleEvents(eventsCtx, ch, errs)
	}()
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(instrument(cfg.Namespace)))
	runtimeapi.RegisterRuntimeServiceServer(s.grpc, rt)
	runtimeapi.RegisterImageServiceServer(s.grpc, imageSvc)
	ok = true
	return s, nil
}

// StreamURL is the streaming server's base URL (http://host:port).
func (s *Server) StreamURL() string { return s.runtime.streams.baseURL.String() }

// Serve answers CRI calls on l until Stop.
func (s *Server) Serve(l net.Listener) error {
	return s.grpc.Serve(l)
}

// Stop stops serving (in-flight calls get a few seconds to finish) and
// following events. Containers keep running; a new Server on the same
// containerd and dirs picks them up.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// Streaming sessions end first (their exec processes are killed)
		// while containerd is still reachable.
		s.runtime.streams.stop()
		s.runtime.events.close() // event streams never end by themselves
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.grpc.Stop()
		}
		s.runtime.nri.stop()
		s.stopEvents()
		<-s.eventsDone
		// Containers keep their stdio FIFOs; the next kcrid reopens them.
		s.runtime.closeContainerIO()
		s.runtime.background.Wait()
		leaseCtx, cancelLease := context.WithTimeout(context.Background(), 5*time.Second)
		s.runtime.creations.close(leaseCtx) // the client's default namespace is kcrid's
		cancelLease()
		s.client.Close()
	})
}
