package forward

import (
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ServeGRPCOverHTTP serves a call that a grpc.Server built with
// [GRPCServerOptions] took with an http.Handler, as an HTTP/2 gRPC
// request: the call's messages become the request's body, the response's
// messages the call's, and the response's trailers its trailers and
// status. It is for the calls no [Service] forwards: health checks,
// reflection, unknown services.
func ServeGRPCOverHTTP(ss grpc.ServerStream, h http.Handler) error {
	procedure, _ := grpc.MethodFromServerStream(ss)
	ctx := ss.Context()
	header, host := headerOf(ctx)
	// grpc-go's server has decompressed the messages, and compresses what
	// it sends as the caller asked: the handler gets and sends none
	// compressed.
	delete(header, "Grpc-Encoding")
	delete(header, "Grpc-Accept-Encoding")
	header["Te"] = []string{"trailers"}
	if d, ok := ctx.Deadline(); ok {
		header["Grpc-Timeout"] = []string{grpcTimeout(d)}
	}
	body, pw := io.Pipe()
	req := standIn(ctx, procedure, header, host, peerAddr(ctx))
	req.Body = body
	if req.RemoteAddr == "" {
		req.RemoteAddr = "0.0.0.0:0"
	}
	go pipeRequest(ss, pw)
	w := &fallbackWriter{ss: ss, header: make(http.Header)}
	h.ServeHTTP(w, req)
	_ = body.Close() // the caller's messages go nowhere once the handler returns
	return w.end()
}

// pipeRequest writes the caller's messages to pw, length-prefixed, as a
// gRPC request body, and closes it at the caller's half-close (or with the
// stream's error).
func pipeRequest(ss grpc.ServerStream, pw *io.PipeWriter) {
	var msg Message
	var prefix [envelopePrefix]byte
	for {
		if err := ss.RecvMsg(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				_ = pw.Close()
			} else {
				_ = pw.CloseWithError(err)
			}
			return
		}
		binary.BigEndian.PutUint32(prefix[1:], uint32(len(msg.data)))
		if _, err := pw.Write(prefix[:]); err != nil {
			return
		}
		if _, err := pw.Write(msg.data); err != nil {
			return
		}
	}
}

// fallbackWriter is the http.ResponseWriter of one call: what the handler
// writes is parsed back into messages for grpc-go.
type fallbackWriter struct {
	ss      grpc.ServerStream
	header  http.Header
	sent    bool // the header metadata went out
	pending []byte
	err     error
}

func (w *fallbackWriter) Header() http.Header { return w.header }

func (w *fallbackWriter) WriteHeader(int) {}

// Flush sends the header metadata, if it has not gone yet.
func (w *fallbackWriter) Flush() { w.sendHeader() }

// EnableFullDuplex is what http.ResponseController asks for: grpc-go's
// streams are full duplex.
func (w *fallbackWriter) EnableFullDuplex() error { return nil }

func (w *fallbackWriter) sendHeader() {
	if w.sent || w.err != nil {
		return
	}
	w.sent = true
	if _, ok := w.header["Grpc-Status"]; ok {
		return // trailers only: the status is the answer
	}
	w.err = w.ss.SendHeader(grpcMetadata(w.header))
}

// Write takes the handler's length-prefixed messages and sends each whole
// one on the stream.
func (w *fallbackWriter) Write(p []byte) (int, error) {
	w.sendHeader()
	if w.err != nil {
		return 0, w.err
	}
	w.pending = append(w.pending, p...)
	for len(w.pending) >= envelopePrefix {
		if w.pending[0] != 0 {
			w.err = errors.New("forward: the handler compressed a message")
			return 0, w.err
		}
		n := int(binary.BigEndian.Uint32(w.pending[1:envelopePrefix]))
		if len(w.pending) < envelopePrefix+n {
			break
		}
		msg := Message{data: w.pending[envelopePrefix : envelopePrefix+n]}
		w.pending = w.pending[envelopePrefix+n:]
		if err := w.ss.SendMsg(&msg); err != nil { // the codec copies it
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

// end sets the call's trailers and returns its status, from the trailers
// the handler set (or the headers, for a trailers-only answer).
func (w *fallbackWriter) end() error {
	trailer := make(http.Header)
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			trailer[http.CanonicalHeaderKey(name)] = vs
		}
	}
	for _, declared := range w.header.Values("Trailer") {
		for name := range strings.SplitSeq(declared, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if vs, ok := w.header[name]; ok {
				trailer[name] = vs
			}
		}
	}
	if trailer.Get("Grpc-Status") == "" && w.header.Get("Grpc-Status") != "" {
		trailer = w.header
	}
	w.ss.SetTrailer(grpcMetadata(trailer))
	return statusOfTrailer(trailer).Err()
}

// statusOfTrailer is the gRPC status a response's trailers carry: code,
// message and details; Internal when they carry none.
func statusOfTrailer(h http.Header) *status.Status {
	if bin := h.Get("Grpc-Status-Details-Bin"); bin != "" {
		if b, err := connect.DecodeBinaryHeader(bin); err == nil {
			var sp spb.Status
			if proto.Unmarshal(b, &sp) == nil {
				return status.FromProto(&sp)
			}
		}
	}
	code, err := strconv.Atoi(h.Get("Grpc-Status"))
	if err != nil {
		return status.New(codes.Internal, "the gateway wrote no grpc-status")
	}
	msg, _ := url.PathUnescape(h.Get("Grpc-Message"))
	return status.New(codes.Code(code), msg)
}

// timeoutUnits are grpc-timeout's units, finest first.
var timeoutUnits = [...]struct {
	d    time.Duration
	unit string
}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}}

// grpcTimeout is the grpc-timeout value of a deadline: the time left, in
// the finest unit that fits the header's 8 digits.
func grpcTimeout(deadline time.Time) string {
	left := time.Until(deadline)
	if left <= 0 {
		return "1n"
	}
	for _, u := range timeoutUnits {
		if v := left / u.d; v < 1e8 {
			return strconv.FormatInt(int64(v), 10) + u.unit
		}
	}
	return "99999999H"
}
