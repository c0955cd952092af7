package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"

	"connectrpc.com/connect"
)

var (
	errBackendUnavailable = errors.New("backend unavailable")
	errBackendFailed      = errors.New("backend call failed")
	errShuttingDown       = errors.New("gateway shutting down")
)

// backendError turns the error of an outbound call into the error the
// client sees. An error the backend sent keeps its code, message, details
// and metadata. An error the outbound client synthesized reveals nothing
// of the backend: a backend that could not be reached, or whose connection
// broke, even in the middle of a stream, gives Unavailable ("backend
// unavailable"), which clients may retry (the endpoint's health is
// recorded by the caller, which saw the failure first); other failures (protocol errors) are logged and
// reported with a generic message; deadlines, cancellations and size
// limits keep theirs. A call cut by the gateway's stop gives Unavailable
// ("gateway shutting down").
//
// A unary call's error carries the backend's headers and trailers, which
// the client receives with it. A stream passes trailer instead: the
// backend's headers were relayed already.
func (m *method) backendError(ctx context.Context, err error, trailer http.Header) error {
	if stopped(ctx) {
		return shuttingDown()
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return m.synthesized(ctx, connect.CodeUnknown, err)
	}
	if connect.IsWireError(ce) {
		var cause error
		if msg := ce.Message(); msg != "" {
			cause = errors.New(msg)
		}
		// A new, non-wire error: connect does not relay the metadata of
		// wire errors, and the backend's headers and trailers must arrive.
		out := connect.NewError(ce.Code(), cause)
		for _, detail := range ce.Details() {
			out.AddDetail(detail) // still encoded: no descriptor needed
		}
		if trailer == nil {
			trailer = ce.Meta()
		}
		copyResponseHeaders(out.Meta(), trailer)
		return out
	}
	switch ce.Code() {
	case connect.CodeCanceled:
		// connect reports a connection reset by the backend as the
		// cancellation of a client that went away; the call was not
		// cancelled, the backend was lost.
		if ctx.Err() == nil && brokenConnection(err) {
			return connect.NewError(connect.CodeUnavailable, errBackendUnavailable)
		}
		return ce
	case connect.CodeDeadlineExceeded, connect.CodeResourceExhausted:
		return ce
	case connect.CodeUnavailable:
		return connect.NewError(connect.CodeUnavailable, errBackendUnavailable)
	}
	return m.synthesized(ctx, ce.Code(), err)
}

// retryable reports whether err, the failure of an attempt, showed the
// endpoint unreachable (refused, reset, lost before the whole answer
// came) rather than being the backend's answer, while the call itself is
// still wanted.
func (m *method) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ce *connect.Error
	if errors.As(err, &ce) && connect.IsWireError(ce) {
		return false
	}
	return connect.CodeOf(err) == connect.CodeUnavailable || brokenConnection(err)
}

// synthesized maps a failure of the outbound call that the backend did not
// send.
func (m *method) synthesized(ctx context.Context, code connect.Code, err error) error {
	if brokenConnection(err) {
		return connect.NewError(connect.CodeUnavailable, errBackendUnavailable)
	}
	m.logFailure(ctx, err)
	return connect.NewError(code, errBackendFailed)
}

// brokenConnection reports whether err is the failure of the connection
// to the backend (refused, reset, closed, lost, cut short) rather than of
// the call on it. connect-go reports these as Unknown or Internal; gRPC
// clients report them as Unavailable, which is what the call is.
func brokenConnection(err error) bool {
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	// net/http's HTTP/2 client keeps these errors unexported.
	msg := err.Error()
	return strings.Contains(msg, "http2: client connection lost") ||
		strings.Contains(msg, "http2: client connection force closed") ||
		strings.Contains(msg, "http2: server sent GOAWAY") ||
		strings.Contains(msg, "connection reset by peer")
}

func (m *method) logFailure(ctx context.Context, err error) {
	if m.logger == nil {
		return
	}
	m.logger.LogAttrs(ctx, slog.LevelWarn, "forward: backend call failed",
		slog.String("procedure", m.procedure),
		slog.String("backend", m.backend.name),
		slog.String("error", err.Error()),
	)
}

// contextError returns err, or the reason ctx is done: a read that failed
// because the deadline passed reports the deadline, one cut by the
// gateway's stop reports the stop.
func contextError(ctx context.Context, err error) error {
	switch ctxErr := ctx.Err(); {
	case ctxErr == nil:
		return err
	case stopped(ctx):
		return shuttingDown()
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, ctxErr)
	default:
		return connect.NewError(connect.CodeCanceled, ctxErr)
	}
}

// stopped reports whether ctx was cancelled by the gateway's stop.
func stopped(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), errShuttingDown)
}

// shuttingDown is the error of a call ended, or refused, by the stop.
func shuttingDown() *connect.Error {
	return connect.NewError(connect.CodeUnavailable, errShuttingDown)
}
