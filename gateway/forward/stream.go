package forward

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"connectrpc.com/connect"
)

// streamContext returns the context of an outbound stream: ctx with the
// method's deadline cap, always cancellable, so that the backend sees the
// stream cancelled (never a clean end) when the client's side fails.
func (m *method) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if capped, cancel := m.capDeadline(ctx); cancel != nil {
		return capped, cancel
	}
	return context.WithCancel(ctx)
}

func (m *method) serverStream(ctx context.Context, req *connect.Request[Message], stream *connect.ServerStream[Message]) error {
	return m.forwardServerStream(ctx, req.Msg, req.Header(), stream.Conn())
}

// forwardServerStream forwards a server stream whose request is msg, with
// the caller's header, and relays the backend's answer to in.
func (m *method) forwardServerStream(ctx context.Context, msg *Message, header http.Header, in connect.StreamingHandlerConn) error {
	ctx, cancel := m.streamContext(ctx)
	defer cancel()
	out := connect.NewRequest(msg)
	m.header(ctx, out.Header(), header)
	res, err := m.client(header, in.Peer()).CallServerStream(ctx, out)
	if err != nil {
		return m.backendError(ctx, err, nil)
	}
	defer res.Close()
	conn, err := res.Conn()
	if err != nil {
		return m.backendError(ctx, err, nil)
	}
	return m.relay(ctx, conn, in)
}

func (m *method) clientStream(ctx context.Context, stream *connect.ClientStream[Message]) (*connect.Response[Message], error) {
	return m.forwardClientStream(ctx, stream.Conn())
}

// forwardClientStream forwards the client stream of in and returns the
// backend's answer.
func (m *method) forwardClientStream(ctx context.Context, in connect.StreamingHandlerConn) (*connect.Response[Message], error) {
	body := bodyFrom(ctx)
	ctx, cancel := m.streamContext(ctx)
	defer cancel()
	call := m.client(in.RequestHeader(), in.Peer()).CallClientStream(ctx)
	m.header(ctx, call.RequestHeader(), in.RequestHeader())
	out, err := call.Conn()
	if err != nil {
		return nil, m.backendError(ctx, err, nil)
	}
	// When the deadline passes while the client is silent, stop waiting
	// for it, and reset the backend's stream (see bidiStream).
	stop := context.AfterFunc(ctx, func() {
		_ = out.CloseResponse()
		body.abandon()
	})
	defer stop()
	var msg Message // reused: each Send copies it out before the next Receive
	for {
		msg.data = msg.data[:0] // connect skips Unmarshal for an empty message
		if err := in.Receive(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			// The client's side failed (too large, cancelled, malformed,
			// out of time): cancel first, so the backend sees a cancelled
			// stream rather than a clean end of a partial input. A body
			// the gateway cut off says why, even if the server has
			// cancelled the context since.
			if cut := body.cutError(); cut != nil {
				err = cut
			} else {
				err = contextError(ctx, err)
			}
			cancel()
			_ = out.CloseResponse()
			return nil, err
		}
		if err := out.Send(&msg); err != nil {
			break // the backend has answered early; CloseAndReceive has it
		}
	}
	res, err := call.CloseAndReceive()
	if err != nil {
		return nil, m.backendError(ctx, err, nil)
	}
	if m.scrub {
		scrubResponse(res.Header())
		scrubResponse(res.Trailer())
	}
	return res, nil
}

func (m *method) bidiStream(ctx context.Context, stream *connect.BidiStream[Message, Message]) error {
	return m.forwardBidiStream(ctx, stream.Conn())
}

// forwardBidiStream forwards the bidi stream of in.
func (m *method) forwardBidiStream(ctx context.Context, in connect.StreamingHandlerConn) error {
	body := bodyFrom(ctx)
	ctx, cancel := m.streamContext(ctx)
	defer cancel()
	call := m.client(in.RequestHeader(), in.Peer()).CallBidiStream(ctx)
	m.header(ctx, call.RequestHeader(), in.RequestHeader())
	out, err := call.Conn()
	if err != nil {
		return m.backendError(ctx, err, nil)
	}
	// Open the backend's stream now: either side may speak first.
	if err := out.Send(nil); err != nil {
		_ = out.CloseResponse()
		return m.backendError(ctx, err, nil)
	}
	// net/http does not reset an HTTP/2 stream whose request body is
	// still open when its context ends; closing the response does.
	stop := context.AfterFunc(ctx, func() { _ = out.CloseResponse() })
	defer stop()

	up := &upstream{in: in, out: out, cancel: cancel, done: make(chan struct{})}
	go up.run()
	err = m.relay(ctx, out, in)
	// A failure of the client's side, recorded before it cancelled the
	// backend's, is what ended the relay.
	clientErr := up.failure()
	// The backend has finished. Stop reading from the client if it is
	// still sending, and wait, unless the body says the pending read ends
	// with the call: connect's stream must not be used after return.
	select {
	case <-up.done:
	default:
		cancel()
		if body.abandon() {
			<-up.done
		}
	}
	_ = out.CloseResponse()
	if err != nil && clientErr != nil {
		return clientErr
	}
	if err != nil {
		// The gateway cut the client's side off (its idle timeout, the
		// stop), which cancelled the backend's: that is the reason.
		if cut := body.cutError(); cut != nil {
			return cut
		}
	}
	return err
}

// upstream relays a bidi stream's requests from the client to the backend.
type upstream struct {
	in     connect.StreamingHandlerConn
	out    connect.StreamingClientConn
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	err error // the client's failure, if any
}

func (u *upstream) run() {
	defer close(u.done)
	var msg Message
	for {
		msg.data = msg.data[:0] // connect skips Unmarshal for an empty message
		if err := u.in.Receive(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				_ = u.out.CloseRequest() // half-close: the backend sees the end
				return
			}
			u.mu.Lock()
			u.err = err
			u.mu.Unlock()
			u.cancel() // the backend sees the stream cancelled
			return
		}
		if err := u.out.Send(&msg); err != nil {
			// The backend has finished or the call was cancelled; the
			// downstream relay reports why.
			return
		}
	}
}

func (u *upstream) failure() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// relay copies the backend's response headers, messages and trailers to
// the client until the backend ends the stream, and returns its status.
func (m *method) relay(ctx context.Context, out connect.StreamingClientConn, in connect.StreamingHandlerConn) error {
	// Relay the headers as soon as the backend sends them: a client may
	// wait for them before it sends or before the first message. A gRPC
	// "trailers-only" answer (an immediate error) carries its metadata in
	// the headers; it is relayed as trailers below instead.
	header := out.ResponseHeader()
	if _, trailersOnly := header["Grpc-Status"]; !trailersOnly && len(header) > 0 {
		copyResponseHeaders(in.ResponseHeader(), header)
		if err := in.Send(nil); err != nil {
			return err
		}
	}
	var msg Message // reused: each Send copies it out before the next Receive
	for {
		msg.data = msg.data[:0] // connect skips Unmarshal for an empty message
		if err := out.Receive(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				copyResponseHeaders(in.ResponseTrailer(), out.ResponseTrailer())
				return nil
			}
			return m.backendError(ctx, err, out.ResponseTrailer())
		}
		if err := in.Send(&msg); err != nil {
			return err // the client is gone; the deferred cancel reaches the backend
		}
	}
}
