package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// bodyLimits are what a service's handler allows a request body.
type bodyLimits struct {
	maxMessageBytes int64         // 0: no limit
	bodyTimeout     time.Duration // unary calls and server streams; 0: none
	idleTimeout     time.Duration // client and bidi streams; 0: none
}

// envelopePrefix is the size of the length prefix of an enveloped message
// (gRPC, gRPC-Web, Connect streams): a flags byte and a 4-byte length.
const envelopePrefix = 5

// callBody is a call's request body as the connect handler reads it. It
// refuses what connect would read in full before refusing: a message over
// the limit is refused as soon as the request's Content-Length or the
// message's length prefix declares it, before the rest is read (connect
// would read, or wait for, all of it to report its size); a body that
// does not arrive in time, a stream that stays silent, and every call when
// the gateway stops, are cut off with the reason as the read's error. A
// read that fails for the client's fault, such as malformed chunked
// encoding, fails with InvalidArgument instead of connect's Unknown or
// Internal.
//
// One goroutine reads; the timer, the stop and the stream code may cut the
// body from others, under mu.
type callBody struct {
	body    io.ReadCloser
	w       http.ResponseWriter
	reqCtx  context.Context // the request's: done when the client has gone
	http1   bool
	limits  *bodyLimits
	stream  bool // a client or bidi stream: the idle timeout applies
	wrapped bool // enveloped messages: the limit applies to each prefix

	// The reading goroutine's state.
	err    error  // returned by every Read once set
	left   int64  // bytes of the current message's payload still to pass
	prefix int    // bytes of the next message's prefix seen
	size   uint32 // the length being read from that prefix
	read   int64  // bytes of an unenveloped body read

	start   time.Time
	waiting atomic.Int64 // when the pending Read started, in ns since start, plus one; 0 when none

	mu        sync.Mutex
	timer     *time.Timer
	cut       *connect.Error // why the body was cut off, if it was
	abandoned bool           // the forwarding stopped reading: errors are not the client's
	ended     bool           // the body ended, or was cut off, or the handler returned
	returned  bool           // the handler returned: w must not be used
	cancel    context.CancelCauseFunc
}

func newCallBody(w http.ResponseWriter, r *http.Request, limits *bodyLimits, stream bool) *callBody {
	b := &callBody{
		body:    r.Body,
		w:       w,
		reqCtx:  r.Context(),
		http1:   r.ProtoMajor < 2,
		limits:  limits,
		stream:  stream,
		wrapped: stream || hasPrefixFold(r.Header.Get("Content-Type"), "application/grpc"),
	}
	if limit := limits.maxMessageBytes; limit > 0 && !stream {
		// One message: the body cannot be larger than it and its prefix.
		if b.wrapped {
			limit += envelopePrefix
		}
		if r.ContentLength > limit {
			b.err = connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, limits.maxMessageBytes))
		}
	}
	timeout := limits.bodyTimeout
	if stream {
		timeout = limits.idleTimeout
	}
	if timeout > 0 && b.err == nil {
		b.start = time.Now()
		b.mu.Lock()
		b.timer = time.AfterFunc(timeout, b.onTimer)
		b.mu.Unlock()
	}
	return b
}

func (b *callBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.refuse()
	}
	idle := b.stream && b.timer != nil
	if idle {
		b.waiting.Store(int64(time.Since(b.start)) + 1)
	}
	n, err := b.body.Read(p)
	if idle {
		b.waiting.Store(0)
	}
	if n > 0 && b.limits.maxMessageBytes > 0 {
		if b.wrapped {
			n = b.scan(p[:n])
		} else {
			n = b.count(n)
		}
		if b.err != nil {
			b.end()
			if n > 0 {
				return n, nil // the refusal comes with the next Read
			}
			return 0, b.refuse()
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.end()
	default:
		b.err = b.readError(err)
		b.end()
		return n, b.refuse()
	}
	return n, err
}

// scan follows the envelopes in chunk, the next bytes of the body, and
// returns how much of it to hand on: all of it, unless a length prefix in
// it declares a message over the limit. Then it hands on the bytes before
// the prefix's last one, so that connect's read of the prefix fails with
// b.err, which it reports as it is.
func (b *callBody) scan(chunk []byte) int {
	for i := 0; i < len(chunk); {
		if b.left > 0 {
			rest := int64(len(chunk) - i)
			if rest <= b.left {
				b.left -= rest
				return len(chunk)
			}
			i += int(b.left)
			b.left = 0
			continue
		}
		if b.prefix > 0 { // the first byte holds flags
			b.size = b.size<<8 | uint32(chunk[i])
		}
		b.prefix++
		if b.prefix == envelopePrefix {
			if int64(b.size) > b.limits.maxMessageBytes {
				b.err = connect.NewError(connect.CodeResourceExhausted,
					fmt.Errorf("message size %d is larger than the limit of %d bytes", b.size, b.limits.maxMessageBytes))
				return i
			}
			b.left, b.prefix, b.size = int64(b.size), 0, 0
		}
		i++
	}
	return len(chunk)
}

// count counts the bytes of an unenveloped body (a Connect unary request)
// and returns how many of the n just read to hand on: up to the limit.
// Connect reads one byte more than the limit to learn that the message is
// too large; that read fails with b.err.
func (b *callBody) count(n int) int {
	b.read += int64(n)
	if over := b.read - b.limits.maxMessageBytes; over > 0 {
		b.err = connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("request message is larger than the limit of %d bytes", b.limits.maxMessageBytes))
		return n - int(over)
	}
	return n
}

// refuse returns b.err. Over HTTP/1.1 it also gives up the connection
// (see dropUnreadBody).
func (b *callBody) refuse() error {
	if b.http1 {
		b.mu.Lock()
		if !b.returned {
			dropHTTP1Body(b.w)
		}
		b.mu.Unlock()
	}
	return b.err
}

// dropUnreadBody prepares the answer to a request whose body will not be
// read. Over HTTP/1.1 the connection is closed after the answer, its
// unread rest never parsed as a request: otherwise net/http would read up
// to 256 KiB of the body, from a client that may never send it, before
// writing the answer and again after. An HTTP/2 stream needs nothing: it
// is reset.
func dropUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor < 2 && r.ContentLength != 0 {
		dropHTTP1Body(w)
	}
}

func dropHTTP1Body(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(aLongTimeAgo)
}

// readError returns the error a failed read of the request body reports.
func (b *callBody) readError(err error) error {
	b.mu.Lock()
	cut, abandoned := b.cut, b.abandoned
	b.mu.Unlock()
	var netErr net.Error
	switch {
	case cut != nil:
		return cut
	case abandoned, b.reqCtx.Err() != nil, !b.http1, errors.As(err, &netErr):
		// The forwarding stopped reading, or the client or its connection
		// went away (connect reports it), or the error is of HTTP/2 flow,
		// which the client does not control the wording of.
		return err
	}
	// What is left are HTTP/1.1 framing errors: a malformed chunk, a body
	// shorter than its Content-Length.
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("malformed request body: %w", err))
}

// cutError returns why the body was cut off, or nil. It accepts a nil b.
func (b *callBody) cutError() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut == nil {
		return nil // not a nil *connect.Error in an error
	}
	return b.cut
}

// Close closes the request body; connect calls it when the call ends.
func (b *callBody) Close() error {
	b.end()
	return b.body.Close()
}

// end stops the timer: the body has ended, one way or another.
func (b *callBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	if b.timer != nil {
		b.timer.Stop()
	}
}

// release is called when the handler returns: nothing may touch the
// response any more, and the call's context is done.
func (b *callBody) release() {
	b.mu.Lock()
	b.ended, b.returned = true, true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	if b.cancel != nil {
		b.cancel(nil)
	}
}

// onTimer runs when the body timeout passes, or, for a stream, when the
// idle timeout may have: it cuts the body off if the stream's pending
// read has waited that long, and otherwise waits for the rest.
func (b *callBody) onTimer() {
	if !b.stream {
		b.cutOff(connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("request body not received within %v", b.limits.bodyTimeout)))
		return
	}
	idle := b.limits.idleTimeout
	next := idle
	if since := b.waiting.Load(); since != 0 {
		waited := time.Since(b.start) - time.Duration(since-1)
		if waited >= idle {
			b.cutOff(connect.NewError(connect.CodeDeadlineExceeded,
				fmt.Errorf("no request data received for %v", idle)))
			return
		}
		next = idle - waited
	}
	b.mu.Lock()
	if !b.ended {
		b.timer.Reset(next)
	}
	b.mu.Unlock()
}

// stop ends the call for the gateway's stop: a pending read fails with
// Unavailable, and the call's context is cancelled.
func (b *callBody) stop() {
	b.cutOff(shuttingDown())
	b.cancel(errShuttingDown)
}

// abandon stops a pending read when the forwarding no longer needs the
// client's messages: the backend has ended the stream or the deadline has
// passed. The read returns soon after: the caller waits for it. It
// accepts a nil b.
func (b *callBody) abandon() bool {
	if b != nil {
		b.cutOff(nil)
	}
	return true
}

// cutOff makes the pending read, and every later one, fail with reason,
// unless the body has ended already. A nil reason abandons the body: the
// read fails with whatever error it gets.
func (b *callBody) cutOff(reason *connect.Error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	if reason == nil {
		b.abandoned = true
	} else {
		b.cut = reason
	}
	b.unblockLocked()
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// unblockLocked makes a pending read of the body return. An HTTP/2
// request body may be closed while a read is pending, which ends the
// read; an HTTP/1.1 one may not (Close waits for the read), so its
// connection's read deadline is moved to the past. b.mu is held.
func (b *callBody) unblockLocked() {
	b.ended = true
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.returned {
		return
	}
	if b.http1 {
		_ = http.NewResponseController(b.w).SetReadDeadline(aLongTimeAgo)
		return
	}
	_ = b.body.Close()
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
