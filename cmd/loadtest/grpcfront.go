package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
)

// An experiment, not part of the gateway: grpc-go's server in front of the
// whole gateway, in one process. Each gRPC call grpc-go's server takes
// becomes an *http.Request and an http.ResponseWriter for the gateway's own
// handler, which runs everything as it does behind net/http (the edge, the
// gate, the interceptors, the forwarding over net/http to the backend). It
// measures whether gRPC callers could be moved to grpc-go's server below
// today's request path, with an adapter, instead of a second path:
//
//	loadtest grpcfront -listen ADDR -backend URL -jwks FILE

// serveGRPCFront serves the gateway behind grpc-go's server on ln until
// ctx is done.
func serveGRPCFront(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	// The gateway listens on nothing of its own: listen and admin are
	// placeholders that the configuration requires.
	cfg, err := config.Parse("grpcfront.yaml", []byte(gatewayConfig("127.0.0.1:1", "127.0.0.1:2", jwksFile, backend, 0)), os.LookupEnv)
	if err != nil {
		_ = ln.Close()
		return err
	}
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer gw.Close()
	front := &grpcFront{h: gw.Handler()}
	return serveGRPC(ctx, ln, front.handle)
}

// grpcFront hands grpc-go's calls to an http.Handler.
type grpcFront struct{ h http.Handler }

// handle serves one call of any method with the handler: the call's
// messages become the request's body, the response's the call's messages,
// and the response's trailers its trailers and status.
func (f *grpcFront) handle(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method")
	}
	ctx := ss.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	header := make(http.Header, len(md)+2)
	host := ""
	for k, vs := range md {
		switch {
		case k == ":authority":
			host = vs[0]
			continue
		case strings.HasPrefix(k, ":"):
			continue
		case strings.HasSuffix(k, "-bin"):
			enc := make([]string, len(vs))
			for i, v := range vs {
				enc[i] = connect.EncodeBinaryHeader([]byte(v))
			}
			vs = enc
		}
		header[http.CanonicalHeaderKey(k)] = vs
	}
	// grpc-go's server has decompressed the messages, and compresses what
	// it sends the caller as the caller asked: the handler neither gets
	// nor sends compressed messages.
	header.Del("Grpc-Encoding")
	header.Del("Grpc-Accept-Encoding")
	header.Set("Content-Type", "application/grpc")
	header.Set("Te", "trailers")
	body, pw := io.Pipe()
	req := (&http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Path: method},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Body:       body,
		Host:       host,
		RequestURI: method,
	}).WithContext(ctx)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		req.RemoteAddr = p.Addr.String()
	}
	go pipeMessages(ss, pw)
	w := &frontWriter{ss: ss, header: make(http.Header)}
	f.h.ServeHTTP(w, req)
	_ = body.Close() // the caller's messages go nowhere once the handler returns
	return w.end()
}

// frontWriter is the http.ResponseWriter of one call: what the handler
// writes is parsed back into messages for grpc-go.
type frontWriter struct {
	ss      grpc.ServerStream
	header  http.Header
	sent    bool // the header metadata went out
	pending []byte
	err     error
}

func (w *frontWriter) Header() http.Header { return w.header }

func (w *frontWriter) WriteHeader(int) {}

// Flush sends the header metadata, if it has not gone yet.
func (w *frontWriter) Flush() { w.sendHeader() }

// EnableFullDuplex is what http.ResponseController asks for: grpc-go's
// streams are full duplex.
func (w *frontWriter) EnableFullDuplex() error { return nil }

func (w *frontWriter) sendHeader() {
	if w.sent || w.err != nil {
		return
	}
	w.sent = true
	if w.header.Get("Grpc-Status") != "" {
		return // trailers only: the status is the answer
	}
	w.err = w.ss.SendHeader(grpcMD(w.header))
}

// Write takes the handler's length-prefixed messages and sends each whole
// one on the stream.
func (w *frontWriter) Write(p []byte) (int, error) {
	w.sendHeader()
	if w.err != nil {
		return 0, w.err
	}
	w.pending = append(w.pending, p...)
	for len(w.pending) >= 5 {
		if w.pending[0] != 0 {
			w.err = errors.New("grpcfront: the handler compressed a message")
			return 0, w.err
		}
		n := int(binary.BigEndian.Uint32(w.pending[1:5]))
		if len(w.pending) < 5+n {
			break
		}
		fr := frame{data: mem.BufferSlice{mem.SliceBuffer(bytes.Clone(w.pending[5 : 5+n]))}}
		w.pending = w.pending[5+n:]
		if err := w.ss.SendMsg(&fr); err != nil {
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

// end sets the call's trailers and returns its status, from the trailers
// the handler set (or the headers, for a trailers-only answer).
func (w *frontWriter) end() error {
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
	w.ss.SetTrailer(grpcMD(trailer))
	return statusOfTrailer(trailer, status.New(codes.Internal, "the gateway wrote no grpc-status")).Err()
}
