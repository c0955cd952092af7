package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// NewHandler returns the path under which to mount the service
// ("/package.Service/") and an http.Handler that serves every method of svc
// by forwarding it to backend. Each method gets its own connect.Handler
// built from its descriptor, so clients may call it with Connect (binary,
// JSON, and GET for methods declared NO_SIDE_EFFECTS), gRPC or gRPC-Web, in
// any of the four stream kinds; payloads are relayed as bytes, never
// decoded. A method the service does not have is answered Unimplemented in
// the caller's protocol, as [Unimplemented] answers unknown services.
//
//	path, h, err := forward.NewHandler(svc, backend, forward.WithHandlerOptions(connect.WithInterceptors(auth)))
//	mux.Handle(path, h)
//
// The descriptor may be compiled in or loaded at run time from a buf image;
// the backend may be shared by several services. NewHandler reports
// invalid option values, naming the option.
func NewHandler(svc protoreflect.ServiceDescriptor, backend *Backend, opts ...Option) (string, *Service, error) {
	if svc == nil {
		return "", nil, errors.New("forward: nil service descriptor")
	}
	if backend == nil {
		return "", nil, fmt.Errorf("forward: %s: nil backend", svc.FullName())
	}
	methods := svc.Methods()
	if methods.Len() == 0 {
		return "", nil, fmt.Errorf("forward: %s has no methods", svc.FullName())
	}
	for _, opt := range opts {
		if opt == nil {
			return "", nil, errors.New("forward: NewHandler: nil option")
		}
	}
	cfg := newConfig(opts)
	if err := errors.Join(cfg.errs...); err != nil {
		return "", nil, err
	}
	filter := newHeaderFilter(cfg.sensitive)
	h := &Service{
		name:   string(svc.FullName()),
		routes: make(map[string]route, methods.Len()),
		body: bodyLimits{
			maxMessageBytes: int64(cfg.maxMessageBytes),
			bodyTimeout:     cfg.requestBodyTimeout,
			idleTimeout:     cfg.streamIdleTimeout,
		},
	}
	if cfg.stop != nil {
		h.stopper = newStopper(cfg.stop)
	}
	for i := range methods.Len() {
		m := newMethod(methods.Get(i), backend, cfg, filter)
		h.routes[m.procedure] = route{
			handler:   m.newHandler(cfg),
			streaming: m.desc.IsStreamingClient(),
			grpc:      m.newGRPCRoute(cfg, &h.body, h.stopper),
		}
	}
	return "/" + h.name + "/", h, nil
}

// Service forwards the calls of one routed service: it is the
// http.Handler of [NewHandler], and serves gRPC callers on grpc-go's
// transport with [Service.ServeGRPC].
type Service struct {
	name    string // the service's full name
	routes  map[string]route
	body    bodyLimits
	stopper *stopper // nil without WithStop
}

type route struct {
	handler *connect.Handler
	grpc    *grpcRoute // the same method for ServeGRPC
	// streaming is true for client and bidi streams, whose request body
	// is bounded by the idle timeout instead of the body timeout, and
	// which the forwarding stops reading when the backend has finished.
	streaming bool
}

// callBodyKey carries a call's requestBody in its context.
type callBodyKey struct{}

// requestBody is what the forwarding of a client or bidi stream needs of
// the call's request: to stop a pending read once the backend has
// finished, and why the gateway cut the request off. *callBody is one for
// connect's handlers, *grpcConn for [Service.ServeGRPC]'s.
type requestBody interface {
	// abandon stops a pending read and reports whether the caller must
	// wait for it to return before the call ends.
	abandon() bool
	cutError() error
}

// noBody is the requestBody of a call that carries none in its context.
type noBody struct{}

func (noBody) abandon() bool   { return true }
func (noBody) cutError() error { return nil }

// bodyFrom returns the request body of the call whose context is ctx.
func bodyFrom(ctx context.Context) requestBody {
	if b, ok := ctx.Value(callBodyKey{}).(requestBody); ok {
		return b
	}
	return noBody{}
}

// unknownMethod is the message of a call of a procedure the service does
// not have.
func (h *Service) unknownMethod(procedure string) string {
	return "unknown method " + truncate(strings.TrimPrefix(procedure, "/"+h.name+"/")) + " for service " + h.name
}

// ServeHTTP serves a call of the service in any of connect's protocols.
func (h *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := h.routes[r.URL.Path]
	if !ok {
		writeUnimplemented(w, r, h.unknownMethod(r.URL.Path))
		return
	}
	body := newCallBody(w, r, &h.body, rt.streaming)
	defer body.release()
	switch {
	case h.stopper != nil:
		ctx, cancel := context.WithCancelCause(r.Context())
		body.cancel = cancel
		if !h.stopper.add(body) {
			writeError(w, r, shuttingDown())
			return
		}
		defer h.stopper.remove(body)
		r = r.WithContext(context.WithValue(ctx, callBodyKey{}, requestBody(body)))
	case rt.streaming:
		r = r.WithContext(context.WithValue(r.Context(), callBodyKey{}, requestBody(body)))
	}
	r.Body = body
	rt.handler.ServeHTTP(w, r)
}

// method forwards one RPC.
type method struct {
	procedure      string
	desc           protoreflect.MethodDescriptor
	backend        *Backend
	clients        [2]*connect.Client[Message, Message] // binary, JSON
	maxTimeout     time.Duration
	filter         *headerFilter
	requestHeaders func(context.Context, http.Header)
	logger         *slog.Logger
	scrub          bool // the backend may answer over HTTP/1.1
	retry          bool // unary and idempotent: see WithRetries
}

func newMethod(md protoreflect.MethodDescriptor, backend *Backend, cfg *config, filter *headerFilter) *method {
	m := &method{
		procedure:      "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		desc:           md,
		backend:        backend,
		maxTimeout:     cfg.maxTimeout,
		filter:         filter,
		requestHeaders: cfg.requestHeaders,
		logger:         cfg.logger,
		scrub:          backend.scheme == "https" && backend.protocol != ProtocolGRPC,
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		m.maxTimeout = cfg.maxStreamTimeout
	}
	level := idempotency(md)
	m.retry = level != connect.IdempotencyUnknown && !md.IsStreamingClient() && !md.IsStreamingServer()
	do := &caller{b: backend, retry: m.retry}
	for i, codec := range [2]connect.Codec{protoCodec, jsonCodec} {
		opts := []connect.ClientOption{
			backend.protocol.clientOption(),
			connect.WithSchema(md),
			connect.WithIdempotency(level),
			connect.WithCodec(codec),
			// Inside the network, compression costs more CPU than it saves.
			connect.WithAcceptCompression("gzip", nil, nil),
		}
		if cfg.maxMessageBytes > 0 {
			opts = append(opts, connect.WithReadMaxBytes(cfg.maxMessageBytes), connect.WithSendMaxBytes(cfg.maxMessageBytes))
		}
		opts = append(opts, backend.clientOptions...)
		m.clients[i] = connect.NewClient[Message, Message](do, backend.placeholderURL(m.procedure), opts...)
	}
	return m
}

// newHandler returns the connect.Handler that serves the method.
func (m *method) newHandler(cfg *config) *connect.Handler {
	opts := []connect.HandlerOption{
		connect.WithSchema(m.desc),
		connect.WithIdempotency(idempotency(m.desc)),
		connect.WithCodec(protoCodec),
		connect.WithCodec(jsonCodec),
		connect.WithCodec(jsonCharsetCodec),
		connect.WithCompressMinBytes(DefaultCompressMinBytes),
	}
	if cfg.maxMessageBytes > 0 {
		opts = append(opts, connect.WithReadMaxBytes(cfg.maxMessageBytes), connect.WithSendMaxBytes(cfg.maxMessageBytes),
			boundedGzip(int64(cfg.maxMessageBytes)))
	}
	if cfg.gate != nil {
		opts = append(opts, connect.WithRequestGate(cfg.gate))
	}
	if len(cfg.interceptors) > 0 {
		opts = append(opts, connect.WithInterceptors(cfg.interceptors...))
	}
	opts = append(opts, cfg.handlerOptions...)
	switch {
	case m.desc.IsStreamingClient() && m.desc.IsStreamingServer():
		return connect.NewBidiStreamHandler(m.procedure, m.bidiStream, opts...)
	case m.desc.IsStreamingClient():
		return connect.NewClientStreamHandler(m.procedure, m.clientStream, opts...)
	case m.desc.IsStreamingServer():
		return connect.NewServerStreamHandler(m.procedure, m.serverStream, opts...)
	}
	return connect.NewUnaryHandler(m.procedure, m.unary, opts...)
}

// idempotency reads the method's idempotency_level option, which connect
// needs to serve GET requests.
func idempotency(md protoreflect.MethodDescriptor) connect.IdempotencyLevel {
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok {
		return connect.IdempotencyUnknown
	}
	switch opts.GetIdempotencyLevel() {
	case descriptorpb.MethodOptions_NO_SIDE_EFFECTS:
		return connect.IdempotencyNoSideEffects
	case descriptorpb.MethodOptions_IDEMPOTENT:
		return connect.IdempotencyIdempotent
	}
	return connect.IdempotencyUnknown
}

// client returns the outbound client whose codec matches the inbound call's:
// JSON stays JSON, binary stays binary, so the bytes pass unchanged.
func (m *method) client(header http.Header, peer connect.Peer) *connect.Client[Message, Message] {
	if isJSON(header, peer) {
		return m.clients[1]
	}
	return m.clients[0]
}

// isJSON reports whether the inbound call uses the JSON codec. Connect has
// already accepted the Content-Type (and put it in canonical form), so only
// its codec suffix matters; a Connect GET names its codec in the query.
func isJSON(header http.Header, peer connect.Peer) bool {
	if ct := header["Content-Type"]; len(ct) > 0 && ct[0] != "" {
		return strings.Contains(ct[0], "json")
	}
	return peer.Query.Get("encoding") == codecJSON
}

// header fills the outbound request's headers.
func (m *method) header(ctx context.Context, dst, src http.Header) {
	m.filter.copy(dst, src)
	if m.requestHeaders != nil {
		m.requestHeaders(ctx, dst)
	}
}

// capDeadline gives ctx the method's maximum timeout when it has no
// earlier deadline. cancel is nil when ctx is returned unchanged.
func (m *method) capDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.maxTimeout <= 0 {
		return ctx, nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= m.maxTimeout {
		return ctx, nil
	}
	return context.WithTimeout(ctx, m.maxTimeout)
}

func (m *method) unary(ctx context.Context, req *connect.Request[Message]) (*connect.Response[Message], error) {
	return m.forwardUnary(ctx, req.Msg, req.Header(), req.Peer())
}

// forwardUnary forwards a unary call whose request is msg, with the
// caller's header.
func (m *method) forwardUnary(ctx context.Context, msg *Message, header http.Header, peer connect.Peer) (*connect.Response[Message], error) {
	ctx, cancel := m.capDeadline(ctx)
	if cancel != nil {
		defer cancel()
	}
	client := m.client(header, peer)
	out := connect.NewRequest(msg)
	m.header(ctx, out.Header(), header)
	var at *attempts
	if m.retry && m.backend.mayRetry(msg.Len()) {
		at = new(attempts)
		ctx = context.WithValue(ctx, attemptsKey{}, at)
	}
	res, err := client.CallUnary(ctx, out)
	for err != nil && at != nil && m.retryable(ctx, err) && m.backend.retryAgain(at) {
		// The answer is held whole before the client gets any of it: the
		// call is sent again, to another endpoint, as if for the first time.
		out = connect.NewRequest(msg)
		m.header(ctx, out.Header(), header)
		res, err = client.CallUnary(ctx, out)
	}
	if err != nil {
		return nil, m.backendError(ctx, err, nil)
	}
	if at != nil && at.n > 1 {
		res.Header().Set(RetriesHeader, strconv.Itoa(at.n-1))
	}
	if m.scrub {
		scrubResponse(res.Header())
		scrubResponse(res.Trailer())
	}
	dropCORS(res.Header())
	// The backend's response, headers and trailers are returned as they
	// are; connect leaves out the protocol headers when it writes them.
	return res, nil
}
