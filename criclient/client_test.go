package criclient

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slowImages is an ImageServiceClient whose PullImage takes a while;
// other methods are not used.
type slowImages struct {
	runtimeapi.ImageServiceClient
	delay time.Duration
	err   error
	auth  *runtimeapi.AuthConfig
}

func (s *slowImages) PullImage(ctx context.Context, in *runtimeapi.PullImageRequest, _ ...grpc.CallOption) (*runtimeapi.PullImageResponse, error) {
	s.auth = in.GetAuth()
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	return &runtimeapi.PullImageResponse{ImageRef: "sha256:abc"}, nil
}

func TestPullShowsProgress(t *testing.T) {
	im := &slowImages{delay: 120 * time.Millisecond}
	c := New(nil, im, time.Second)
	var ticks atomic.Int32
	ref, err := c.PullImage(t.Context(), PullOptions{
		Image: "x", Auth: &runtimeapi.AuthConfig{Username: "u"},
		Progress: func(time.Duration) { ticks.Add(1) }, Interval: 20 * time.Millisecond,
	})
	if err != nil || ref != "sha256:abc" {
		t.Fatalf("pull = %q, %v", ref, err)
	}
	if n := ticks.Load(); n < 3 {
		t.Errorf("%d progress ticks in 120ms at 20ms", n)
	}
	if im.auth.GetUsername() != "u" {
		t.Errorf("auth not passed: %v", im.auth)
	}
	// The pull is not bound by the short call timeout, only by its own.
	if _, err := New(nil, &slowImages{delay: 50 * time.Millisecond}, 10*time.Millisecond).PullImage(t.Context(), PullOptions{Image: "x"}); err != nil {
		t.Errorf("pull longer than the call timeout failed: %v", err)
	}
	_, err = New(nil, &slowImages{delay: time.Second}, 0).PullImage(t.Context(), PullOptions{Image: "x", Timeout: 20 * time.Millisecond})
	var re *RPCError
	if !errors.As(err, &re) || re.Code != codes.DeadlineExceeded {
		t.Errorf("pull past --pull-timeout: %v", err)
	}
	_, err = New(nil, &slowImages{err: status.Error(codes.NotFound, "manifest unknown")}, 0).PullImage(t.Context(), PullOptions{Image: "reg/x:1"})
	if err == nil || err.Error() != `pull image "reg/x:1": manifest unknown (NotFound)` || !IsNotFound(err) {
		t.Errorf("pull error = %v", err)
	}
}
