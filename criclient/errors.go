package criclient

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RPCError is a CRI call's gRPC error in a readable form: the runtime's
// message followed by the code in parentheses.
type RPCError struct {
	Code    codes.Code
	Message string
}

func (e *RPCError) Error() string { return e.Message + " (" + e.Code.String() + ")" }

// rpcErr converts gRPC status errors; other errors pass through.
func rpcErr(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &RPCError{Code: st.Code(), Message: st.Message()}
}

// IsNotFound reports whether err is a CRI NotFound error.
func IsNotFound(err error) bool {
	var re *RPCError
	if errors.As(err, &re) {
		return re.Code == codes.NotFound
	}
	return status.Code(err) == codes.NotFound
}
