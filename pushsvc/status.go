package pushsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pushgate/pushgate/relay"
)

// This file alone decides how errors become gRPC status codes; REST gets the
// HTTP status from grpc-gateway's standard mapping of those codes (400, 401,
// 503, 504, 500).

// invalidArgument reports a request that failed validation. The message is
// the validation error itself, which names the field and what is wrong.
func invalidArgument(err error) error {
	return status.Error(codes.InvalidArgument, err.Error())
}

// routerStatus maps an error from the Router to a gRPC status:
//   - relay.ErrUnavailable (the broker cannot take the message) → UNAVAILABLE;
//   - a context deadline → DEADLINE_EXCEEDED, cancellation → CANCELED;
//   - an error that already is a gRPC status keeps its code, so a Router can
//     refuse something deliberately (INVALID_ARGUMENT, RESOURCE_EXHAUSTED);
//   - anything else → INTERNAL.
//
// A failed send is never reported as success.
func routerStatus(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, relay.ErrUnavailable):
		return status.Errorf(codes.Unavailable, "message not sent, the broker is unavailable: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "message not confirmed by the broker in time: %v", err)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "request canceled before the broker confirmed the message: %v", err)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK && st.Code() != codes.Unknown {
		return st.Err()
	}
	return status.Errorf(codes.Internal, "message not sent: %v", err)
}
