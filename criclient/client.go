package criclient

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kctr/kctr/endpoints"
)

// Client holds the two CRI services and the timeout of unary calls.
type Client struct {
	Runtime runtimeapi.RuntimeServiceClient
	Image   runtimeapi.ImageServiceClient
	// Timeout bounds each unary call; 0 means no bound beyond ctx.
	Timeout time.Duration
}

// New wraps already connected services (tests pass fakes).
func New(rt runtimeapi.RuntimeServiceClient, im runtimeapi.ImageServiceClient, timeout time.Duration) *Client {
	return &Client{Runtime: rt, Image: im, Timeout: timeout}
}

// Connect resolves the endpoints (see package endpoints) and returns a
// client on the chosen connections. The caller closes the Resolution. When
// nothing answers, the error is an *endpoints.NoEndpointError whose message
// is the diagnosis.
func Connect(ctx context.Context, o endpoints.Options, callTimeout time.Duration) (*Client, *endpoints.Resolution, error) {
	res, err := endpoints.Resolve(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	if callTimeout <= 0 {
		callTimeout = res.Timeout
	}
	return New(runtimeapi.NewRuntimeServiceClient(res.Runtime.Conn), runtimeapi.NewImageServiceClient(res.Image.Conn), callTimeout), res, nil
}

// call returns a context bounded by the client's timeout.
func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.Timeout)
}

// longCallTimeout bounds calls that may do real work (run a pod, pull an
// image, stop with a grace period), as the kubelet bounds sandbox calls.
const longCallTimeout = 4 * time.Minute

// long returns a context for a call that may take longer than Timeout.
func (c *Client) long(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(c.Timeout, longCallTimeout)+extra)
}
