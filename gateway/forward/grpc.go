package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/anypb"
)

// GRPCServerOptions returns the options of a grpc.Server whose
// unknown-service handler serves calls with [Service.ServeGRPC] and
// [ServeGRPCOverHTTP]: a codec that passes messages through as bytes, the
// message size limit (zero is [DefaultMaxMessageBytes]), and a context of
// each call's own that the forwarding can cancel. A message over the limit
// is refused with ResourceExhausted as soon as its length prefix declares
// it, and a compressed one stops inflating there.
//
// grpc-go's transport costs less CPU per call than net/http's HTTP/2
// server and connect's handlers; it speaks only gRPC (application/grpc
// over HTTP/2), so Connect, gRPC-Web and REST callers, and browsers, are
// served by the http.Handler of [NewHandler].
func GRPCServerOptions(maxMessageBytes int) []grpc.ServerOption {
	if maxMessageBytes <= 0 {
		maxMessageBytes = DefaultMaxMessageBytes
	}
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(messageCodec{}),
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.MaxSendMsgSize(maxMessageBytes),
		grpc.InTapHandle(tapCall),
	}
}

// ServeGRPC serves a call of the service that a grpc.Server built with
// [GRPCServerOptions] took: it passes the same gate and interceptors as on
// the service's http.Handler ([WithGate], [WithInterceptors]) and is
// forwarded by the same code, with the same limits, timeouts, deadline
// caps, retries, header filtering and stop. A method the service does not
// have is answered Unimplemented.
//
// edge, when not nil, returns the context the call is decided and
// forwarded in, given a request that stands for the call: its method
// (POST), URL, Host, header, RemoteAddr, TLS state and context, and no
// body.
func (h *Service) ServeGRPC(ss grpc.ServerStream, edge func(*http.Request) context.Context) error {
	procedure, _ := grpc.MethodFromServerStream(ss)
	rt, ok := h.routes[procedure]
	if !ok {
		return status.Error(codes.Unimplemented, h.unknownMethod(procedure))
	}
	return rt.grpc.serve(ss, edge)
}

// ServiceOf returns the service a gRPC procedure ("/pkg.Service/Method")
// names.
func ServiceOf(procedure string) string {
	name := strings.TrimPrefix(procedure, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

// grpcRoute is a method as [Service.ServeGRPC] serves it.
type grpcRoute struct {
	spec    connect.Spec
	gate    connect.RequestGateFunc      // nil: none
	handler connect.StreamingHandlerFunc // the forwarding, within the interceptors
	body    *bodyLimits
	stopper *stopper // nil without WithStop
}

// newGRPCRoute returns the method's route for [Service.ServeGRPC].
func (m *method) newGRPCRoute(cfg *config, body *bodyLimits, stop *stopper) *grpcRoute {
	st := connect.StreamTypeUnary
	if m.desc.IsStreamingClient() {
		st |= connect.StreamTypeClient
	}
	if m.desc.IsStreamingServer() {
		st |= connect.StreamTypeServer
	}
	h := connect.StreamingHandlerFunc(m.serveStream)
	for i := len(cfg.interceptors) - 1; i >= 0; i-- {
		h = cfg.interceptors[i].WrapStreamingHandler(h)
	}
	return &grpcRoute{
		spec: connect.Spec{
			StreamType:       st,
			Schema:           m.desc,
			Procedure:        m.procedure,
			IdempotencyLevel: idempotency(m.desc),
		},
		gate:    cfg.gate,
		handler: h,
		body:    body,
		stopper: stop,
	}
}

// serveStream forwards a call of any stream kind whose caller's side is
// conn, as connect's handlers do.
func (m *method) serveStream(ctx context.Context, conn connect.StreamingHandlerConn) error {
	if m.desc.IsStreamingClient() {
		if m.desc.IsStreamingServer() {
			return m.forwardBidiStream(ctx, conn)
		}
		res, err := m.forwardClientStream(ctx, conn)
		if err != nil {
			return err
		}
		return sendResponse(conn, res)
	}
	var msg Message
	if err := receiveOne(conn, &msg); err != nil {
		return err
	}
	if m.desc.IsStreamingServer() {
		return m.forwardServerStream(ctx, &msg, conn.RequestHeader(), conn)
	}
	res, err := m.forwardUnary(ctx, &msg, conn.RequestHeader(), conn.Peer())
	if err != nil {
		return err
	}
	return sendResponse(conn, res)
}

// receiveOne receives the single request message of a unary call or a
// server stream, and the end of the request after it.
func receiveOne(conn connect.StreamingHandlerConn, msg *Message) error {
	if err := conn.Receive(msg); err != nil {
		if errors.Is(err, io.EOF) {
			return connect.NewError(connect.CodeInvalidArgument, errors.New("request has no message"))
		}
		return err
	}
	var extra Message
	switch err := conn.Receive(&extra); {
	case err == nil:
		return connect.NewError(connect.CodeInvalidArgument, errors.New("request has more than one message"))
	case !errors.Is(err, io.EOF):
		return err
	}
	return nil
}

// sendResponse sends a unary answer: its headers, its message and its
// trailers.
func sendResponse(conn connect.StreamingHandlerConn, res *connect.Response[Message]) error {
	copyResponseHeaders(conn.ResponseHeader(), res.Header())
	copyResponseHeaders(conn.ResponseTrailer(), res.Trailer())
	return conn.Send(res.Msg)
}

// serve decides and forwards one call.
func (r *grpcRoute) serve(ss grpc.ServerStream, edge func(*http.Request) context.Context) error {
	conn := newGRPCConn(ss, r)
	ctx := ss.Context()
	if edge != nil {
		ctx = edge(standIn(ctx, r.spec.Procedure, conn.header, conn.host, conn.peer.Addr))
	}
	if r.spec.StreamType&connect.StreamTypeClient != 0 {
		ctx = context.WithValue(ctx, callBodyKey{}, requestBody(conn))
	}
	if r.stopper != nil {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		conn.cancel = cancel
		if !r.stopper.add(conn) {
			return conn.finish(shuttingDown())
		}
		defer r.stopper.remove(conn)
	}
	if r.gate != nil {
		gated, err := r.gate(ctx, r.spec, conn.peer, conn.header)
		if err != nil {
			return conn.finish(err)
		}
		if gated != nil {
			ctx = gated
		}
	}
	return conn.finish(r.handler(ctx, conn))
}

// tapCall gives each call a context of its own that the gateway can
// cancel: grpc-go's stream reads wait on it, so cancelling it is how a
// read that waited too long is cut off. grpc-go then ends the call
// itself, with DeadlineExceeded (see [tapContext.Err]).
func tapCall(ctx context.Context, _ *tap.Info) (context.Context, error) {
	inner, cancel := context.WithCancelCause(ctx)
	return &tapContext{Context: inner, cancel: cancel}, nil
}

// tapContext is the context tapCall gives a call.
type tapContext struct {
	context.Context
	cancel   context.CancelCauseFunc
	timedOut atomic.Bool // cancelled because a read waited too long
}

// Err is context.DeadlineExceeded once a read waited too long: the error
// grpc-go turns into the status of a read cut off.
func (t *tapContext) Err() error {
	err := t.Context.Err()
	if err != nil && t.timedOut.Load() {
		return context.DeadlineExceeded
	}
	return err
}

type tapKey struct{}

// Value returns the tapContext for its key and asks the parent otherwise.
func (t *tapContext) Value(key any) any {
	if key == (tapKey{}) {
		return t
	}
	return t.Context.Value(key)
}

// grpcConn is the caller's side of a call [Service.ServeGRPC] serves, as the
// connect.StreamingHandlerConn the gate, the interceptors and the
// forwarding know.
type grpcConn struct {
	ss     grpc.ServerStream
	spec   connect.Spec
	peer   connect.Peer
	header http.Header
	host   string
	tc     *tapContext
	cancel context.CancelCauseFunc // ends the call's forwarding; nil without a stopper
	body   *bodyLimits
	stream bool // a client or bidi stream: the idle timeout applies

	responseHeader  http.Header
	responseTrailer http.Header
	sent            bool // the header metadata went out

	mu      sync.Mutex
	timer   *time.Timer
	waiting bool           // a read is pending
	cut     *connect.Error // why the gateway cut the request off
}

func newGRPCConn(ss grpc.ServerStream, r *grpcRoute) *grpcConn {
	ctx := ss.Context()
	c := &grpcConn{
		ss:     ss,
		spec:   r.spec,
		peer:   connect.Peer{Protocol: connect.ProtocolGRPC},
		body:   r.body,
		stream: r.spec.StreamType&connect.StreamTypeClient != 0,
	}
	c.tc, _ = ctx.Value(tapKey{}).(*tapContext)
	if c.tc == nil { // served without tapCall: nothing to cancel with
		inner, cancel := context.WithCancelCause(ctx)
		c.tc = &tapContext{Context: inner, cancel: cancel}
	}
	c.peer.Addr = peerAddr(ctx)
	c.header, c.host = headerOf(ctx)
	return c
}

// peerAddr is the address of the caller of a call grpc-go's server took.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// headerOf returns the call's metadata as HTTP headers, with binary
// values base64-encoded again as on the wire, and its :authority.
func headerOf(ctx context.Context) (http.Header, string) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := make(http.Header, len(md)+1)
	host := ""
	for k, vs := range md {
		switch {
		case k == ":authority":
			if len(vs) > 0 {
				host = vs[0]
			}
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
		h[http.CanonicalHeaderKey(k)] = vs
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = []string{"application/grpc"}
	}
	return h, host
}

// standIn returns a request, without a body, that stands for a call of
// procedure grpc-go's server took, from the caller at addr, for code that
// reads requests: the edge, the fallback handler.
func standIn(ctx context.Context, procedure string, header http.Header, host, addr string) *http.Request {
	r := &http.Request{
		Method:     http.MethodPost,
		URL:        &url.URL{Scheme: "http", Host: host, Path: procedure},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       host,
		RemoteAddr: addr,
		RequestURI: procedure,
	}
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			r.TLS = &info.State
			r.URL.Scheme = "https"
		}
	}
	return r.WithContext(ctx)
}

// Spec implements connect.StreamingHandlerConn.
func (c *grpcConn) Spec() connect.Spec { return c.spec }

// Peer implements connect.StreamingHandlerConn.
func (c *grpcConn) Peer() connect.Peer { return c.peer }

// RequestHeader implements connect.StreamingHandlerConn.
func (c *grpcConn) RequestHeader() http.Header { return c.header }

// ResponseHeader implements connect.StreamingHandlerConn.
func (c *grpcConn) ResponseHeader() http.Header {
	if c.responseHeader == nil {
		c.responseHeader = make(http.Header)
	}
	return c.responseHeader
}

// ResponseTrailer implements connect.StreamingHandlerConn.
func (c *grpcConn) ResponseTrailer() http.Header {
	if c.responseTrailer == nil {
		c.responseTrailer = make(http.Header)
	}
	return c.responseTrailer
}

// Receive receives the next request message into msg, a *Message. The
// request of a unary call or a server stream must arrive within the body
// timeout, each message of a client or bidi stream within the idle
// timeout.
func (c *grpcConn) Receive(msg any) error {
	m, ok := msg.(*Message)
	if !ok {
		return connect.NewError(connect.CodeInternal, fmt.Errorf("forward: cannot receive into %T", msg))
	}
	c.startWait()
	err := c.ss.RecvMsg(m)
	cut := c.endWait(err != nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return io.EOF
	case cut != nil:
		return cut
	}
	return fromStatus(err)
}

// startWait starts timing a read.
func (c *grpcConn) startWait() {
	timeout := c.body.bodyTimeout
	if c.stream {
		timeout = c.body.idleTimeout
	}
	if timeout <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = true
	switch {
	case c.timer == nil:
		c.timer = time.AfterFunc(timeout, c.onTimer)
	case c.stream:
		c.timer.Reset(timeout)
	}
}

// endWait stops timing a read: every read of a stream, and the request of
// a unary call once it has ended. It returns why the gateway cut the
// request off, if it did.
func (c *grpcConn) endWait(ended bool) *connect.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream || ended {
		c.waiting = false
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return c.cut
}

// onTimer cuts off a read that has waited too long.
func (c *grpcConn) onTimer() {
	c.mu.Lock()
	if !c.waiting || c.cut != nil {
		c.mu.Unlock()
		return
	}
	if c.stream {
		c.cut = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("no request data received for %v", c.body.idleTimeout))
	} else {
		c.cut = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("request body not received within %v", c.body.bodyTimeout))
	}
	cut := c.cut
	c.mu.Unlock()
	c.tc.timedOut.Store(true)
	c.tc.cancel(cut)
}

// abandon leaves a pending read to end with the call: grpc-go ends it
// once the handler returns, and would end the call with Canceled if it
// were cut off before.
func (*grpcConn) abandon() bool { return false }

// cutError returns why the gateway cut the request off, or nil.
func (c *grpcConn) cutError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut == nil {
		return nil
	}
	return c.cut
}

// stop ends the call for the gateway's stop.
func (c *grpcConn) stop() {
	c.mu.Lock()
	if c.cut == nil {
		c.cut = shuttingDown()
	}
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel(errShuttingDown)
	}
}

// Send sends msg, a *Message, after the header metadata; a nil msg sends
// only the header metadata.
func (c *grpcConn) Send(msg any) error {
	if !c.sent {
		c.sent = true
		if err := c.ss.SendHeader(grpcMetadata(c.responseHeader)); err != nil {
			return fromStatus(err)
		}
	}
	if msg == nil {
		return nil
	}
	if err := c.ss.SendMsg(msg); err != nil {
		return fromStatus(err)
	}
	return nil
}

// finish sets the call's header and trailer metadata and returns its
// status: err's code, message, details, and metadata among the trailers,
// as connect's gRPC handlers answer.
func (c *grpcConn) finish(err error) error {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.waiting = false
	cut := c.cut
	c.mu.Unlock()
	if !c.sent && len(c.responseHeader) > 0 {
		_ = c.ss.SetHeader(grpcMetadata(c.responseHeader))
	}
	if err == nil {
		if len(c.responseTrailer) > 0 {
			c.ss.SetTrailer(grpcMetadata(c.responseTrailer))
		}
		return nil
	}
	if cut != nil {
		// The gateway cut the request off (a timeout, the stop), which
		// cancelled the call: that is the reason.
		err = cut
	}
	ce := asConnectError(err)
	trailer := grpcMetadata(c.responseTrailer)
	for k, vs := range grpcMetadata(ce.Meta()) {
		trailer[k] = append(trailer[k], vs...)
	}
	if len(trailer) > 0 {
		c.ss.SetTrailer(trailer)
	}
	return grpcStatus(ce)
}

// asConnectError returns err as the *connect.Error connect's handlers
// would answer with.
func asConnectError(err error) *connect.Error {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	}
	return connect.NewError(connect.CodeUnknown, err)
}

// typeURLPrefix prefixes the type of an error detail in a google.rpc.Status.
const typeURLPrefix = "type.googleapis.com/"

// grpcStatus is the gRPC status of ce, with its details.
func grpcStatus(ce *connect.Error) error {
	p := &spb.Status{Code: int32(ce.Code()), Message: ce.Message()}
	for _, d := range ce.Details() {
		p.Details = append(p.Details, &anypb.Any{TypeUrl: typeURLPrefix + d.Type(), Value: d.Bytes()})
	}
	return status.FromProto(p).Err()
}

// fromStatus is the connect error of a grpc-go status error.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if detail, derr := connect.NewErrorDetail(d); derr == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}

// grpcMetadata is h as gRPC metadata, without the protocol's own keys;
// binary (-bin) values, base64 in headers, are decoded, as grpc-go
// encodes them again.
func grpcMetadata(h http.Header) metadata.MD {
	md := make(metadata.MD, len(h))
	for k, vs := range h {
		if _, drop := metadataDropped[k]; drop || hasHeaderPrefix(k, "grpc-") {
			continue
		}
		k = strings.ToLower(k)
		if strings.HasSuffix(k, "-bin") {
			raw := make([]string, 0, len(vs))
			for _, v := range vs {
				if b, err := connect.DecodeBinaryHeader(v); err == nil {
					raw = append(raw, string(b))
				}
			}
			vs = raw
		}
		md[k] = vs
	}
	return md
}

// metadataDropped are the headers that are not metadata: hop-by-hop
// headers and those of the protocol, which grpc-go writes itself.
var metadataDropped = headerSet(hopByHop[:], []string{"Host", "Content-Type", "Content-Length", "Date"})

// messageCodec moves *Message values as bytes, without decoding them. It
// names itself proto, the content subtype gRPC callers use.
type messageCodec struct{}

// Marshal copies the message into a pooled buffer, which grpc-go frees
// once written: the message's own buffer is reused for the next one.
func (messageCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*Message)
	if !ok {
		return nil, fmt.Errorf("forward: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.Copy(m.data, mem.DefaultBufferPool())}, nil
}

// Unmarshal copies the received message into the *Message.
func (messageCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*Message)
	if !ok {
		return fmt.Errorf("forward: cannot unmarshal into %T", v)
	}
	m.data = m.data[:0]
	for _, b := range data {
		m.data = append(m.data, b.ReadOnlyData()...)
	}
	return nil
}

// Name is the codec's content subtype.
func (messageCodec) Name() string { return codecProto }
