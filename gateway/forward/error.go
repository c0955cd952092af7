package forward

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
)

var (
	errBackendUnavailable = errors.New("backend unavailable")
	errBackendFailed      = errors.New("backend call failed")
)

// backendError turns the error of an outbound call into the error the
// client sees. An error the backend sent keeps its code, message, details
// and metadata. An error the outbound client synthesized (connection
// refused, TLS failure, protocol error) is logged and reported with a
// generic message that does not reveal the backend's address; deadlines,
// cancellations and size limits keep theirs.
//
// A unary call's error carries the backend's headers and trailers, which
// the client receives with it. A stream passes trailer instead: the
// backend's headers were relayed already.
func (m *method) backendError(ctx context.Context, err error, trailer http.Header) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		m.logFailure(ctx, err)
		return connect.NewError(connect.CodeUnknown, errBackendFailed)
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
	case connect.CodeCanceled, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted:
		return ce
	case connect.CodeUnavailable:
		m.logFailure(ctx, err)
		return connect.NewError(connect.CodeUnavailable, errBackendUnavailable)
	}
	m.logFailure(ctx, err)
	return connect.NewError(ce.Code(), errBackendFailed)
}

func (m *method) logFailure(ctx context.Context, err error) {
	if m.logger == nil {
		return
	}
	m.logger.LogAttrs(ctx, slog.LevelWarn, "forward: backend call failed",
		slog.String("procedure", m.procedure),
		slog.String("backend", m.backend.base),
		slog.String("error", err.Error()),
	)
}
