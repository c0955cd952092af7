package telemetry

import (
	"encoding/binary"
	"net/http"
	"strings"
	"sync/atomic"
)

// responseWriter is the edge's response writer. For a call nothing has
// recorded yet, it notes what the edge needs to tell what the client got:
// the status, and the body's part that holds the error, if any: the start
// of a unary Connect error's, or the last message of a stream (a Connect
// end-of-stream message, gRPC-Web trailers).
type responseWriter struct {
	http.ResponseWriter
	recorded *atomic.Bool // the call's
	status   int

	wrote     bool    // the body has started
	framed    bool    // the body is a stream of enveloped messages: Connect or gRPC-Web
	prefix    [5]byte // the current message's prefix: flags, then length
	prefixLen uint8   // how much of the prefix was written
	left      uint32  // what is left of the current message
	end       byte    // the flags of the stream's end, once it started
	sniff     []byte  // what the body holds of the error
}

// sniffLen is how much of a body's error the edge reads: enough for the
// code and a message.
const sniffLen = 256

// Flags of an enveloped message that ends a stream: a Connect
// end-of-stream message (with its error, if any), gRPC-Web trailers.
const (
	flagCompressed       = 0b1
	flagConnectEndStream = 0b10
	flagGRPCWebTrailers  = 0b1000_0000
)

// WriteHeader notes the status and sends it.
func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write notes what p holds of an error, then sends it.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.sniff != nil || !w.recorded.Load() {
		w.note(p)
	}
	return w.ResponseWriter.Write(p)
}

// note reads what the body p continues holds of an error.
func (w *responseWriter) note(p []byte) {
	if !w.wrote {
		w.wrote = true
		ct := w.Header().Get("Content-Type")
		w.framed = strings.HasPrefix(ct, "application/connect+") ||
			strings.HasPrefix(ct, "application/grpc-web") && !strings.HasPrefix(ct, "application/grpc-web-text")
		if !w.framed && w.status >= 400 {
			w.sniff = make([]byte, 0, sniffLen)
		}
	}
	if !w.framed {
		w.keep(p)
		return
	}
	for len(p) > 0 {
		if w.left == 0 { // between messages: a prefix
			n := copy(w.prefix[w.prefixLen:], p)
			p, w.prefixLen = p[n:], w.prefixLen+uint8(n)
			if w.prefixLen < uint8(len(w.prefix)) {
				return
			}
			w.prefixLen = 0
			w.left = binary.BigEndian.Uint32(w.prefix[1:])
			if flags := w.prefix[0]; flags&(flagConnectEndStream|flagGRPCWebTrailers) != 0 {
				w.end, w.sniff = flags, make([]byte, 0, sniffLen)
			}
			continue
		}
		n := min(uint32(len(p)), w.left)
		if w.end != 0 {
			w.keep(p[:n])
		}
		p, w.left = p[n:], w.left-n
	}
}

// keep keeps what fits of p in sniff.
func (w *responseWriter) keep(p []byte) {
	if w.sniff != nil {
		w.sniff = append(w.sniff, p[:min(len(p), cap(w.sniff)-len(w.sniff))]...)
	}
}

// Unwrap returns the server's response writer, for
// http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// flushWriter is the response writer of an edge whose server's writer can
// flush, as connect requires for streams.
type flushWriter struct {
	responseWriter
}

// Flush sends what is buffered.
func (w *flushWriter) Flush() { _ = w.FlushError() }

// FlushError sends what is buffered and reports the server's error, as
// http.ResponseController.Flush does.
func (w *flushWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

var (
	_ http.Flusher                              = (*flushWriter)(nil)
	_ interface{ FlushError() error }           = (*flushWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*responseWriter)(nil)
)
