package criclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// PortForward forwards local ports to a pod ("[LOCAL:]REMOTE" specs, as
// kubectl port-forward takes them) on 127.0.0.1 until ctx ends. transport
// is "spdy" (default) or "websocket" (SPDY tunnelled over websocket).
// ready, if not nil, is closed once the listeners are up.
func (c *Client) PortForward(ctx context.Context, podID string, ports []string, transport string, ready chan struct{}, out, errOut io.Writer) error {
	cctx, cancel := c.call(ctx)
	r, err := c.Runtime.PortForward(cctx, &runtimeapi.PortForwardRequest{PodSandboxId: podID})
	cancel()
	if err != nil {
		return fmt.Errorf("port-forward to pod %q: %w", podID, rpcErr(err))
	}
	u, err := url.Parse(r.GetUrl())
	if err != nil {
		return fmt.Errorf("runtime returned a bad streaming URL %q: %w", r.GetUrl(), err)
	}
	cfg := &restclient.Config{TLSClientConfig: restclient.TLSClientConfig{Insecure: true}}
	var dialer streamhttp.Dialer
	switch transport {
	case "", "spdy":
		tr, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return err
		}
		dialer = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: tr}, "POST", u)
	case "websocket":
		if dialer, err = portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown transport %q (use spdy or websocket)", transport)
	}
	if ready == nil {
		ready = make(chan struct{})
	}
	pf, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{"127.0.0.1"}, ports, ready, out, errOut)
	if err != nil {
		return fmt.Errorf("port-forward to pod %q: %w", podID, err)
	}
	if err := pf.ForwardPorts(); err != nil {
		return fmt.Errorf("port-forward to pod %q: %w", podID, err)
	}
	return nil
}
