package cri

import (
	"context"
	"errors"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// instrument is the one wrapper every RPC passes through: it puts the
// containerd namespace into the context, logs the call and turns errors
// into gRPC status codes. Handlers return plain errors with errdefs classes.
func instrument(namespace string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = namespaces.WithNamespace(ctx, namespace)
		start := time.Now()
		entry := log.G(ctx).WithField("rpc", info.FullMethod)
		entry.WithField("request", req).Trace("rpc start")
		resp, err := handler(ctx, req)
		entry = entry.WithField("duration", time.Since(start).Round(time.Microsecond))
		if err != nil {
			err = toStatus(err)
			code := status.Code(err)
			switch code {
			case codes.NotFound, codes.Unimplemented, codes.AlreadyExists, codes.InvalidArgument, codes.FailedPrecondition:
				entry.WithError(err).Debug("rpc failed")
			default:
				entry.WithError(err).Warn("rpc failed")
			}
			return nil, err
		}
		entry.Debug("rpc done")
		return resp, nil
	}
}

// toStatus maps an error to a gRPC status error. An error that already is
// a status keeps its code; errdefs classes and context errors are mapped;
// anything else is Unknown.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errdefs.IsNotFound(err):
		return codes.NotFound
	case errdefs.IsInvalidArgument(err):
		return codes.InvalidArgument
	case errdefs.IsAlreadyExists(err):
		return codes.AlreadyExists
	case errdefs.IsFailedPrecondition(err), errdefs.IsConflict(err):
		return codes.FailedPrecondition
	case errdefs.IsUnauthorized(err):
		return codes.Unauthenticated
	case errdefs.IsPermissionDenied(err):
		return codes.PermissionDenied
	case errdefs.IsNotImplemented(err):
		return codes.Unimplemented
	case errdefs.IsUnavailable(err):
		return codes.Unavailable
	case errdefs.IsDataLoss(err):
		return codes.DataLoss
	case errdefs.IsResourceExhausted(err):
		return codes.ResourceExhausted
	case errdefs.IsOutOfRange(err):
		return codes.OutOfRange
	case errdefs.IsAborted(err):
		return codes.Aborted
	case errdefs.IsDeadlineExceeded(err):
		return codes.DeadlineExceeded
	case errdefs.IsCanceled(err):
		return codes.Canceled
	}
	return codes.Unknown
}

// unimplemented is the error for RPCs that come with later work.
func unimplemented(rpc, why string) error {
	return status.Errorf(codes.Unimplemented, "kcrid does not implement %s yet: %s", rpc, why)
}
