package gateway

import (
	"bufio"
	"context"
	"net"
	"net/http"

	"github.com/portcullis/portcullis/gateway/coalesce"
)

// readBufferSize is what each plaintext connection reads ahead: a few
// frames of the calls most clients make.
const readBufferSize = 4 << 10

// bufferedListener hands out connections whose reads go through a
// buffer, and whose HTTP/2 writes are coalesced (package coalesce: a
// response's headers go out with its first DATA frame). net/http's HTTP/2
// server reads each frame straight from its connection, the 9-byte header
// and then the payload: on h2c, two read syscalls per frame, which
// measured a fifth of the gateway's CPU on bidi streams (BENCHMARKS.md).
// Through the buffer, the frames that arrived together cost one. Over TLS,
// crypto/tls already reads whole records, and the bytes beneath it are
// records, not frames, so only the plaintext listener is wrapped.
type bufferedListener struct{ net.Listener }

// Accept returns the next connection, buffered.
func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	w := coalesce.Server(c)
	return &bufferedConn{Conn: w, w: w, r: bufio.NewReaderSize(c, readBufferSize)}, nil
}

// bufferedConn is a connection read through a buffer, written through a
// coalescing writer.
type bufferedConn struct {
	net.Conn
	w *coalesce.Conn
	r *bufio.Reader
}

// Read reads from the buffer, refilling it from the connection when empty;
// a read as large as the buffer goes to the connection directly.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite shuts the sending side, as net/http does before it closes an
// HTTP/1.1 connection, so that the client reads the last response whole.
func (c *bufferedConn) CloseWrite() error { return c.w.CloseWrite() }

// coalescedKey is the context key of a request's coalescing writer.
type coalescedKey struct{}

// connContext is the main listener's http.Server.ConnContext: the
// requests of a buffered connection carry its coalescing writer, for
// [flushHeld].
func connContext(ctx context.Context, c net.Conn) context.Context {
	if bc, ok := c.(*bufferedConn); ok {
		return context.WithValue(ctx, coalescedKey{}, bc.w)
	}
	return ctx
}

// flushHeld returns the response writer of an HTTP/2 request on a
// coalesced connection: when a handler flushes, the headers the
// connection holds go out at once, for a stream whose headers are relayed
// before its first message (a client may wait for them). Elsewhere it
// returns w.
func flushHeld(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if r.ProtoMajor != 2 {
		return w
	}
	c, _ := r.Context().Value(coalescedKey{}).(*coalesce.Conn)
	if c == nil {
		return w
	}
	return &flushingWriter{ResponseWriter: w, conn: c}
}

// flushingWriter is a response writer whose flushes also flush its
// connection's held headers.
type flushingWriter struct {
	http.ResponseWriter
	conn *coalesce.Conn
}

// Flush sends what is buffered.
func (w *flushingWriter) Flush() { _ = w.FlushError() }

// FlushError sends what is buffered, then what the connection holds, and
// reports the server's error, as http.ResponseController.Flush does.
func (w *flushingWriter) FlushError() error {
	err := http.NewResponseController(w.ResponseWriter).Flush()
	_ = w.conn.Flush() // a failed write fails the stream's next one
	return err
}

// Unwrap returns the server's response writer, for
// http.ResponseController.
func (w *flushingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher                    = (*flushingWriter)(nil)
	_ interface{ FlushError() error } = (*flushingWriter)(nil)
)
