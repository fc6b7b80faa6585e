package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxMsgSize matches what kubelet and crictl allow for CRI responses.
const maxMsgSize = 16 << 20

// criAPIVersion is sent in VersionRequest.Version.
const criAPIVersion = "v1"

// Full method names used in diagnoses.
const (
	methodVersion     = "runtime.v1.RuntimeService/Version"
	methodImageFsInfo = "runtime.v1.ImageService/ImageFsInfo"
)

// dialFunc has grpc.NewClient's signature; tests wrap it to count dials.
type dialFunc func(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error)

type prober struct {
	timeout  time.Duration
	dialOpts []grpc.DialOption
	dial     dialFunc
}

func newProber(o Options, timeout time.Duration) *prober {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
	}
	opts = append(opts, o.DialOptions...)
	dial := o.dial
	if dial == nil {
		dial = grpc.NewClient
	}
	return &prober{timeout: timeout, dialOpts: opts, dial: dial}
}

// checkSocket looks at a unix socket path without dialing. It returns
// whether something exists there and, if it cannot be dialed, why.
func checkSocket(ep Endpoint) (exists bool, problem string) {
	if ep.Scheme != "unix" {
		return true, "" // nothing to look at for tcp
	}
	fi, err := os.Stat(ep.Address)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, "socket file does not exist"
	case err != nil:
		return false, "cannot check socket file: " + err.Error()
	case fi.Mode().Type() == fs.ModeSocket:
		return true, ""
	case fi.IsDir():
		return true, "is a directory, not a socket"
	case fi.Mode().IsRegular():
		return true, "is a regular file, not a socket"
	default:
		return true, "is not a socket (" + fi.Mode().Type().String() + ")"
	}
}

// connect checks the socket and dials it. A nil conn with a problem means
// the candidate was skipped; exists says whether the socket file is there.
func (p *prober) connect(ep Endpoint) (conn *grpc.ClientConn, exists bool, problem string) {
	exists, problem = checkSocket(ep)
	if problem != "" {
		return nil, exists, problem
	}
	conn, err := p.dial(ep.target(), p.dialOpts...)
	if err != nil {
		return nil, exists, "cannot create gRPC client: " + err.Error()
	}
	return conn, exists, ""
}

// probeRuntime asks one candidate for its Version. On success the open
// connection and the response are returned and the record says Answered;
// otherwise the connection is closed and the record says why.
func (p *prober) probeRuntime(ctx context.Context, c planned) (Candidate, *grpc.ClientConn, *runtimeapi.VersionResponse) {
	start := time.Now()
	rec := Candidate{Endpoint: c.ep.String(), Source: c.source}
	conn, exists, problem := p.connect(c.ep)
	rec.SocketExists = exists
	if conn == nil {
		rec.Err = problem
		rec.Duration = time.Since(start)
		return rec, nil, nil
	}
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).Version(pctx, &runtimeapi.VersionRequest{Version: criAPIVersion})
	cancel()
	rec.Duration = time.Since(start)
	if err != nil {
		conn.Close()
		rec.Err = describeRPCError(ctx, err, methodVersion, p.timeout)
		return rec, nil, nil
	}
	rec.Answered = true
	rec.RuntimeName = resp.GetRuntimeName()
	rec.RuntimeVersion = resp.GetRuntimeVersion()
	rec.RuntimeAPIVersion = resp.GetRuntimeApiVersion()
	return rec, conn, resp
}

// probeImage checks a separate image endpoint with ImageFsInfo, a cheap
// ImageService call, and closes the connection.
func (p *prober) probeImage(ctx context.Context, c planned) Candidate {
	start := time.Now()
	rec := Candidate{Endpoint: c.ep.String(), Source: c.source}
	conn, exists, problem := p.connect(c.ep)
	rec.SocketExists = exists
	if conn == nil {
		rec.Err = problem
		rec.Duration = time.Since(start)
		return rec
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	_, err := runtimeapi.NewImageServiceClient(conn).ImageFsInfo(pctx, &runtimeapi.ImageFsInfoRequest{})
	cancel()
	rec.Duration = time.Since(start)
	if err != nil {
		rec.Err = describeRPCError(ctx, err, methodImageFsInfo, p.timeout)
		return rec
	}
	rec.Answered = true
	return rec
}

// describeRPCError turns a probe's gRPC error into a one-line reason.
// parent is the caller's context, to tell our timeout from theirs.
func describeRPCError(parent context.Context, err error, method string, timeout time.Duration) string {
	if perr := parent.Err(); perr != nil {
		return "gave up: " + perr.Error()
	}
	st := status.Convert(err)
	msg := st.Message()
	switch st.Code() {
	case codes.Unimplemented:
		return fmt.Sprintf("answers gRPC but not CRI v1 (%s is unimplemented; CRI plugin disabled?)", method)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("no answer to %s within %s", shortMethod(method), timeout)
	case codes.Unavailable:
		switch {
		case strings.Contains(msg, "permission denied"):
			return "permission denied on the socket (run as root or as a member of the socket's group)"
		case strings.Contains(msg, "connection refused"):
			return "connection refused: nothing listens on the socket (stale socket file?)"
		case strings.Contains(msg, "server preface") || strings.Contains(msg, "http2"):
			return "does not speak gRPC: " + msg
		case strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF"):
			return "closed the connection during the gRPC handshake (not a gRPC server?): " + msg
		}
		return "unavailable: " + msg
	}
	return fmt.Sprintf("%s failed: %s: %s", shortMethod(method), st.Code(), msg)
}

func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}
