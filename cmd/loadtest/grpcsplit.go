package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/forward"
)

// Two more experiments, not part of the gateway, that split grpcrelay.go's
// gain between its two sides: each takes grpc-go's transport on one side
// only and net/http's HTTP/2 on the other, with the same policy code and
// the same undecoded messages. Together with relay.go (net/http on both
// sides, no connect-go) and grpcrelay.go (grpc-go on both), they say which
// side of the gateway a change of transport would pay on:
//
//	loadtest grpcin  -listen ADDR -backend URL -jwks FILE   grpc-go in, net/http out
//	loadtest grpcout -listen ADDR -backend URL -jwks FILE   net/http in, grpc-go out

// serveGRPCIn takes gRPC calls on grpc-go's server and relays them with
// net/http's HTTP/2 client, until ctx is done.
func serveGRPCIn(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	pol, err := newPolicy(ctx, jwksFile)
	if err != nil {
		_ = ln.Close()
		return err
	}
	u, err := url.Parse(backend)
	if err != nil {
		_ = ln.Close()
		return err
	}
	tr := relayTransport()
	defer tr.CloseIdleConnections()
	in := &grpcIn{policy: pol, backend: strings.TrimSuffix(u.String(), "/"), transport: tr}
	return serveGRPC(ctx, ln, in.handle)
}

// grpcIn relays the calls grpc-go's server takes as HTTP/2 requests.
type grpcIn struct {
	*policy
	backend   string
	transport *http.Transport
}

// handle decides one call of any method and relays it as an HTTP/2
// request: its messages up while the backend's come down, then the
// backend's trailers and status.
func (g *grpcIn) handle(_ any, ss grpc.ServerStream) error {
	method, in, header, p, err := g.admit(ss)
	if err != nil {
		return err
	}
	ctx := ss.Context()
	for k := range in {
		if !forwardedKey(k) {
			delete(header, http.CanonicalHeaderKey(k))
		}
	}
	header.Set("Content-Type", "application/grpc")
	header.Set("Te", "trailers")
	header.Set(forward.ClientIDHeader, p.ClientID)
	header.Set(forward.TierHeader, p.Tier)
	if deadline, ok := ctx.Deadline(); ok {
		header.Set("Grpc-Timeout", grpcTimeoutValue(time.Until(deadline)))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.backend+method, body)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	req.Header = header
	go pipeMessages(ss, pw)
	res, err := g.transport.RoundTrip(req)
	if err != nil {
		body.CloseWithError(err)
		return status.Error(codes.Unavailable, err.Error())
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return status.Errorf(codes.Unavailable, "backend: HTTP %d", res.StatusCode)
	}
	if md := grpcMD(res.Header); len(md) > 0 || res.Header.Get("Grpc-Status") == "" {
		if err := ss.SendHeader(md); err != nil {
			return err
		}
	}
	for {
		buf, err := readFrame(res.Body)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return status.Error(codes.Unavailable, err.Error())
		}
		f := frame{data: mem.BufferSlice{mem.SliceBuffer(buf)}}
		if err := ss.SendMsg(&f); err != nil {
			return err
		}
	}
	trailer := res.Trailer
	if res.Header.Get("Grpc-Status") != "" { // trailers only
		trailer = res.Header
	}
	ss.SetTrailer(grpcMD(trailer))
	return statusOfTrailer(trailer, status.New(codes.Unknown, "backend: no grpc-status")).Err()
}

// pipeMessages writes the caller's messages to pw, length-prefixed, as a
// gRPC request body, and closes it at the caller's half-close (or with the
// stream's error).
func pipeMessages(ss grpc.ServerStream, pw *io.PipeWriter) {
	var f frame
	for {
		if err := ss.RecvMsg(&f); err != nil {
			if errors.Is(err, io.EOF) {
				pw.Close()
			} else {
				pw.CloseWithError(err)
			}
			return
		}
		if err := writeFrame(pw, &f); err != nil {
			return
		}
	}
}

// statusOfTrailer is the gRPC status a response's trailers carry: code,
// message and details; missing when they carry none.
func statusOfTrailer(h http.Header, missing *status.Status) *status.Status {
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
		return missing
	}
	msg, _ := url.PathUnescape(h.Get("Grpc-Message"))
	return status.New(codes.Code(code), msg)
}

// grpcMD is the metadata of an HTTP/2 gRPC header or trailer block,
// without the protocol's own keys; binary (-bin) values, base64 on the
// wire, are decoded, as grpc-go encodes them again.
func grpcMD(h http.Header) metadata.MD {
	md := make(metadata.MD, len(h))
	for k, v := range h {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, "grpc-") || k == "content-type" || k == "trailer" || k == "date" {
			continue
		}
		if strings.HasSuffix(k, "-bin") {
			raw := make([]string, 0, len(v))
			for _, s := range v {
				if b, err := connect.DecodeBinaryHeader(s); err == nil {
					raw = append(raw, string(b))
				}
			}
			v = raw
		}
		md[k] = v
	}
	return md
}

// writeFrame writes the message of f, length-prefixed, and frees it.
func writeFrame(w io.Writer, f *frame) error {
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], uint32(f.data.Len()))
	_, err := w.Write(prefix[:])
	for _, b := range f.data {
		if err == nil {
			_, err = w.Write(b.ReadOnlyData())
		}
	}
	f.free()
	return err
}

// readFrame reads one length-prefixed gRPC message.
func readFrame(r io.Reader) ([]byte, error) {
	var prefix [5]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("a message prefix cut short")
		}
		return nil, err // io.EOF: no more messages
	}
	if prefix[0] != 0 {
		return nil, errors.New("compressed message")
	}
	n := int(binary.BigEndian.Uint32(prefix[1:]))
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("a message cut short: %w", err)
	}
	return buf, nil
}

// serveGRPCOut takes gRPC calls on net/http's HTTP/2 server and relays
// them on one grpc-go client connection, until ctx is done.
func serveGRPCOut(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	g, err := newGRPCRelay(ctx, backend, jwksFile)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer g.conn.Close()
	return serveH2C(ctx, ln, grpcOut{g})
}

// grpcOut relays the requests net/http's server takes as grpc-go streams.
type grpcOut struct{ *grpcRelay }

// ServeHTTP decides one gRPC request and relays it on a grpc-go stream;
// the request's body is not read once it returns.
func (g grpcOut) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/grpc")
	p, err := g.authorizer.Check(r.Context(), r.URL.Path, r.Header)
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			for k, v := range ce.Meta() {
				w.Header()[k] = v // WWW-Authenticate
			}
			writeStatus(w, status.New(codes.Code(ce.Code()), ce.Message()), false)
			return
		}
		writeStatus(w, status.New(codes.Internal, "refused"), false)
		return
	}
	if p == nil {
		writeStatus(w, status.New(codes.Unauthenticated, "refused"), false)
		return
	}
	if res, err := g.limiter.Allow(r.Context(), p.ClientID, g.limit, 1); err != nil || !res.Allowed {
		writeStatus(w, status.New(codes.ResourceExhausted, "refused"), false)
		return
	}
	out := make(metadata.MD, len(r.Header)+2)
	for k, v := range r.Header {
		if k = strings.ToLower(k); forwardedKey(k) {
			out[k] = v
		}
	}
	out[clientIDKey] = []string{p.ClientID}
	out[tierKey] = []string{p.Tier}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(r.Context(), out))
	defer cancel()
	if d, ok := grpcTimeout(r.Header.Get("Grpc-Timeout")); ok {
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	cs, err := g.conn.NewStream(ctx, relayStream, r.URL.Path)
	if err != nil {
		writeStatus(w, status.Convert(err), false)
		return
	}
	up := make(chan struct{})
	defer func() {
		cancel()
		_ = r.Body.Close() // ends a read under way
		<-up
	}()
	go func() {
		defer close(up)
		for {
			buf, err := readFrame(r.Body)
			if err != nil {
				if errors.Is(err, io.EOF) {
					_ = cs.CloseSend()
				} else {
					cancel()
				}
				return
			}
			f := frame{data: mem.BufferSlice{mem.SliceBuffer(buf)}}
			if err := cs.SendMsg(&f); err != nil {
				return
			}
		}
	}()
	md, _ := cs.Header()
	for k, v := range responseMD(md) {
		w.Header()[http.CanonicalHeaderKey(k)] = v
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var f frame
	for {
		err := cs.RecvMsg(&f)
		if err != nil {
			for k, v := range responseMD(cs.Trailer()) {
				w.Header()[http.TrailerPrefix+http.CanonicalHeaderKey(k)] = v
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			writeStatus(w, status.Convert(err), true)
			return
		}
		werr := writeFrame(w, &f)
		if werr == nil {
			werr = rc.Flush()
		}
		if werr != nil {
			return
		}
	}
}

// writeStatus ends a gRPC response with its status: in the trailers once
// the headers are written, else as a trailers-only response.
func writeStatus(w http.ResponseWriter, st *status.Status, written bool) {
	prefix := ""
	if written {
		prefix = http.TrailerPrefix
	}
	h := w.Header()
	h.Set(prefix+"Grpc-Status", strconv.Itoa(int(st.Code())))
	if msg := st.Message(); msg != "" {
		h.Set(prefix+"Grpc-Message", url.PathEscape(msg))
	}
	if len(st.Proto().GetDetails()) > 0 {
		if b, err := proto.Marshal(st.Proto()); err == nil {
			h.Set(prefix+"Grpc-Status-Details-Bin", connect.EncodeBinaryHeader(b))
		}
	}
	if !written {
		w.WriteHeader(http.StatusOK)
	}
}

// grpcTimeoutValue is d as a grpc-timeout header: at most 8 digits, in
// the finest unit they can hold, rounded up.
func grpcTimeoutValue(d time.Duration) string {
	d = max(d, time.Nanosecond)
	for _, u := range []struct {
		unit byte
		d    time.Duration
	}{{'n', time.Nanosecond}, {'u', time.Microsecond}, {'m', time.Millisecond}, {'S', time.Second}, {'M', time.Minute}} {
		if n := (d + u.d - 1) / u.d; n < 1e8 {
			return strconv.FormatInt(int64(n), 10) + string(u.unit)
		}
	}
	return strconv.FormatInt(int64(min((d+time.Hour-1)/time.Hour, 1e8-1)), 10) + "H"
}

// grpcTimeout parses a grpc-timeout header: at most 8 digits and a unit.
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit, ok := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second,
		'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	return time.Duration(n) * unit, ok
}
