package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// The calls of a gRPC backend in the binary codec go out on grpc-go's
// client transport, one grpc.ClientConn per endpoint connection, with no
// connect client and no net/http transport between: grpc-go writes each
// connection's frames from one goroutine, in batches, where net/http's
// client starts a goroutine per request. The balancer, the retries, the
// outlier detection and the error mapping are the package's own, as for
// every other call: each ClientConn dials one address (no resolver, no
// balancer, no retries of grpc-go's), and each call is a
// connect.StreamingClientConn (backendStream), so that the forwarding
// code and the client interceptors ([WithClientInterceptors]) see it as
// they see connect's.

// grpcConns are an endpoint's grpc-go connections, used in turn.
type grpcConns struct {
	conns       []*grpcConn1
	next        atomic.Uint32
	dialTimeout time.Duration
}

// grpcConn1 is one connection to the endpoint, with the outcome of its
// dials.
type grpcConn1 struct {
	cc    *grpc.ClientConn
	dials dialWatch
}

// newGRPCConns returns the connections to the endpoint at host (an
// address), known by authority when it is not "".
func newGRPCConns(host, authority string, secure bool, cfg *backendConfig) (*grpcConns, error) {
	dialer := &net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 30 * time.Second}
	creds := insecure.NewCredentials()
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.tls != nil {
			tc = cfg.tls.Clone()
		}
		if tc.ServerName == "" {
			name := authority
			if name == "" {
				name = host
			}
			tc.ServerName, _, _ = net.SplitHostPort(name)
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// grpc-go dials again on its own, after a backoff; a call that
		// finds the connection down dials at once (see pick).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: cfg.dialTimeout,
		}),
		grpc.WithDisableRetry(),              // the Backend retries, within its budget
		grpc.WithDisableServiceConfig(),      // no backend decides the gateway's policy
		grpc.WithStatsHandler(answerWatch{}), // which statuses the backend sent
		// What a backend may send ahead of a slow client, per stream: the
		// gateway buffers at most this much of each response.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(16 << 20),
		// Probe a connection that has been silent this long, and drop it
		// when the probe is not answered.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 15 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(messageCodec{}),
			// Inside the network, compression costs more CPU than it saves.
			experimental.AcceptCompressors(),
		),
	}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	g := &grpcConns{conns: make([]*grpcConn1, cfg.connections), dialTimeout: cfg.dialTimeout}
	for i := range g.conns {
		c := new(grpcConn1)
		dial := grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			c.dials.ended(err)
			return conn, err
		})
		cc, err := grpc.NewClient("passthrough:///"+host, append(opts, dial)...)
		if err != nil {
			g.close()
			return nil, errorf("backend %s: %w", host, err)
		}
		c.cc = cc
		g.conns[i] = c
	}
	return g, nil
}

// errDialTimeout ends the wait of a call for a connection being made.
var errDialTimeout = errors.New("dial timed out")

// pick returns the connection of the next call. A connection that failed
// its last dial is dialled again at once, as net/http's transport dials
// for a request that finds no connection, and the call learns the
// outcome: err when the dial failed (or took the dial timeout), else
// wait, which says the connection is being made and the call should wait
// for it (up to the dial timeout), since grpc-go reports the failure
// until it is ready.
func (g *grpcConns) pick(ctx context.Context) (cc *grpc.ClientConn, wait bool, err error) {
	c := g.conns[0]
	if n := uint32(len(g.conns)); n > 1 {
		c = g.conns[g.next.Add(1)%n]
	}
	if c.cc.GetState() != connectivity.TransientFailure {
		return c.cc, false, nil
	}
	next := c.dials.next()
	c.cc.ResetConnectBackoff()
	timer := time.NewTimer(g.dialTimeout)
	defer timer.Stop()
	select {
	case <-next.done:
		if next.err != nil {
			return nil, false, next.err
		}
		return c.cc, true, nil
	case <-timer.C:
		return nil, false, errDialTimeout
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (g *grpcConns) close() {
	for _, c := range g.conns {
		if c != nil && c.cc != nil {
			_ = c.cc.Close()
		}
	}
}

// dialWatch tells those waiting for a connection's next dial its outcome.
type dialWatch struct {
	mu      sync.Mutex
	pending *dialOutcome
}

type dialOutcome struct {
	done chan struct{}
	err  error // set before done is closed
}

// next returns the outcome of the dial that ends next.
func (d *dialWatch) next() *dialOutcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = &dialOutcome{done: make(chan struct{})}
	}
	return d.pending
}

// ended records the end of a dial.
func (d *dialWatch) ended(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o := d.pending; o != nil {
		o.err = err
		close(o.done)
		d.pending = nil
	}
}

// answerWatch is the stats handler of the backends' connections: it
// marks the calls whose status the backend sent (in trailers, or a
// trailers-only answer), so that they are told from the failures
// grpc-go reports itself, whose codes may be the same.
type answerWatch struct{}

func (answerWatch) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (answerWatch) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.InTrailer); ok {
		if bs, ok := ctx.Value(backendStreamKey{}).(*backendStream); ok {
			bs.answered.Store(true)
		}
	}
}

func (answerWatch) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (answerWatch) HandleConn(context.Context, stats.ConnStats) {}

// backendStreamKey carries a call's *backendStream to answerWatch.
type backendStreamKey struct{}

// grpcOut is how a method's calls go out on grpc-go's transport.
type grpcOut struct {
	spec  connect.Spec
	desc  *grpc.StreamDesc
	open  connect.StreamingClientFunc // newStream within the client interceptors
	opts  []grpc.CallOption
	retry bool
}

// newGRPCOut returns the grpc-go outbound path of m, whose backend speaks
// gRPC, or nil if it does not.
func (m *method) newGRPCOut(cfg *config) *grpcOut {
	b := m.backend
	if b.protocol != ProtocolGRPC {
		return nil
	}
	spec := m.spec()
	spec.IsClient = true
	o := &grpcOut{
		spec:  spec,
		desc:  &grpc.StreamDesc{StreamName: string(m.desc.Name()), ClientStreams: m.desc.IsStreamingClient(), ServerStreams: m.desc.IsStreamingServer()},
		retry: m.retry,
	}
	if cfg.maxMessageBytes > 0 {
		o.opts = append(o.opts, grpc.MaxCallRecvMsgSize(cfg.maxMessageBytes), grpc.MaxCallSendMsgSize(cfg.maxMessageBytes))
	}
	open := connect.StreamingClientFunc(func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		return &backendStream{m: m, out: o, ctx: ctx, spec: spec, header: make(http.Header, 8)}
	})
	for i := len(b.cfg.interceptors) - 1; i >= 0; i-- {
		open = b.cfg.interceptors[i].WrapStreamingClient(open)
	}
	o.open = open
	return o
}

// stream returns a new outbound stream of the method: nothing is sent
// until its first Send, CloseRequest or Receive, so its request header
// may be filled first.
func (o *grpcOut) stream(ctx context.Context) connect.StreamingClientConn {
	return o.open(ctx, o.spec)
}

// backendStream is one call to a gRPC backend on grpc-go's transport, as
// a connect.StreamingClientConn: the stream opens, on an endpoint the
// balancer chooses, at the first Send, CloseRequest or Receive; errors
// are connect errors, wire errors when the backend sent them.
type backendStream struct {
	m      *method
	out    *grpcOut
	ctx    context.Context
	spec   connect.Spec
	header http.Header // sent when the stream opens

	opened  bool
	openErr error
	e       *endpoint
	cs      grpc.ClientStream
	cancel  context.CancelFunc

	answered atomic.Bool // the backend sent the status
	released atomic.Bool // e's inflight count is given back

	headerOnce sync.Once
	resHeader  http.Header
	trailer    http.Header
	endErr     error // what Receive returns once the stream has ended
}

// Spec implements connect.StreamingClientConn.
func (s *backendStream) Spec() connect.Spec { return s.spec }

// Peer implements connect.StreamingClientConn: the backend's placeholder
// host, as connect's clients report it.
func (s *backendStream) Peer() connect.Peer {
	return connect.Peer{Addr: placeholderHost, Protocol: connect.ProtocolGRPC}
}

// RequestHeader implements connect.StreamingClientConn.
func (s *backendStream) RequestHeader() http.Header { return s.header }

// open starts the stream on an endpoint the balancer chooses, one the
// call (when it may be retried) has not tried.
func (s *backendStream) open() error {
	if s.opened {
		return s.openErr
	}
	s.opened = true
	b := s.m.backend
	var at *attempts
	var tried []*endpoint
	if s.out.retry {
		if at, _ = s.ctx.Value(attemptsKey{}).(*attempts); at != nil {
			tried = at.tried[:at.n]
		}
	}
	e := b.pick(b.set.Load(), tried)
	if e == nil {
		s.openErr = connect.NewError(connect.CodeUnavailable, errNoEndpoint)
		return s.openErr
	}
	if at != nil && at.n < maxAttempts {
		at.tried[at.n] = e
		at.n++
	}
	if e.grpc == nil {
		s.openErr = connect.NewError(connect.CodeUnavailable, e.grpcErr)
		return s.openErr
	}
	s.e = e
	e.inflight.Add(1)
	e.requests.Add(1)
	ctx, cancel := context.WithCancelCause(s.ctx)
	s.cancel = func() { cancel(context.Canceled) }
	cc, wait, err := e.grpc.pick(ctx)
	if err != nil {
		s.openErr = s.unreachable(err)
		return s.openErr
	}
	opts := s.out.opts
	if wait {
		// Wait for the connection being made, up to the dial timeout.
		opts = append(opts[:len(opts):len(opts)], grpc.WaitForReady(true))
		watchdog := time.AfterFunc(e.grpc.dialTimeout, func() { cancel(errDialTimeout) })
		defer watchdog.Stop()
	}
	ctx = metadata.NewOutgoingContext(ctx, outgoingMetadata(s.header))
	ctx = context.WithValue(ctx, backendStreamKey{}, s)
	cs, err := cc.NewStream(ctx, s.out.desc, e.prefix+s.m.procedure, opts...)
	if err != nil {
		if errors.Is(context.Cause(ctx), errDialTimeout) {
			err = errDialTimeout
		}
		s.openErr = s.fail(err)
		return s.openErr
	}
	s.cs = cs
	return nil
}

// Send implements connect.StreamingClientConn. Send(nil) opens the
// stream without a message. It returns io.EOF once the backend has ended
// the stream; Receive then returns its status.
func (s *backendStream) Send(msg any) error {
	if err := s.open(); err != nil {
		return err
	}
	if msg == nil {
		return nil
	}
	if err := s.cs.SendMsg(msg); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return s.fail(err)
	}
	return nil
}

// CloseRequest implements connect.StreamingClientConn: the backend sees
// the end of the requests.
func (s *backendStream) CloseRequest() error {
	if err := s.open(); err != nil {
		return err
	}
	return s.cs.CloseSend()
}

// Receive implements connect.StreamingClientConn. At the end of the
// stream it returns io.EOF if the backend's status is OK, else the
// status as a connect error.
func (s *backendStream) Receive(msg any) error {
	if err := s.open(); err != nil {
		return err
	}
	if s.endErr != nil {
		return s.endErr
	}
	err := s.cs.RecvMsg(msg)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		s.e.answered(s.ctx)
		s.release()
		s.endErr = io.EOF
	} else {
		s.endErr = s.fail(err)
	}
	return s.endErr
}

// ResponseHeader implements connect.StreamingClientConn: it waits for the
// backend's headers, and is empty when the backend answered with its
// status alone.
func (s *backendStream) ResponseHeader() http.Header {
	s.headerOnce.Do(func() {
		if s.open() == nil {
			if md, _ := s.cs.Header(); md != nil {
				s.resHeader = headerOfMD(md, len(md))
				s.e.answered(s.ctx)
				return
			}
		}
		s.resHeader = make(http.Header)
	})
	return s.resHeader
}

// ResponseTrailer implements connect.StreamingClientConn; it is complete
// once Receive has returned an error or io.EOF.
func (s *backendStream) ResponseTrailer() http.Header {
	if s.trailer == nil {
		if s.cs == nil || s.endErr == nil {
			return make(http.Header)
		}
		s.trailer = headerOfMD(s.cs.Trailer(), 0)
	}
	return s.trailer
}

// CloseResponse implements connect.StreamingClientConn: a stream still
// open is reset, so the backend sees it cancelled.
func (s *backendStream) CloseResponse() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.release()
	return nil
}

func (s *backendStream) release() {
	if s.e != nil && !s.released.Swap(true) {
		s.e.inflight.Add(-1)
	}
}

// fail turns a grpc-go error of the stream into a connect error: a wire
// error with the code, message, details and trailers the backend sent;
// the code grpc-go maps a non-gRPC answer's HTTP status to; or grpc-go's
// own failure, recorded against the endpoint when it showed the endpoint
// unreachable.
func (s *backendStream) fail(err error) error {
	defer s.release()
	st, _ := status.FromError(err)
	code := connect.Code(st.Code())
	switch {
	case s.answered.Load():
		s.e.answered(s.ctx)
		var cause error
		if msg := st.Message(); msg != "" {
			cause = errors.New(msg)
		}
		ce := connect.NewWireError(code, cause)
		for _, d := range st.Proto().GetDetails() {
			if detail, derr := connect.NewErrorDetail(d); derr == nil {
				ce.AddDetail(detail)
			}
		}
		if s.cs != nil {
			copyResponseHeaders(ce.Meta(), headerOfMD(s.cs.Trailer(), 0))
		}
		return ce
	case s.ctx.Err() != nil:
		return contextError(s.ctx, err)
	case strings.HasPrefix(st.Message(), "unexpected HTTP status code"):
		// Not a gRPC server (a proxy's error page, say): it answered.
		s.e.answered(s.ctx)
		return connect.NewError(code, err)
	case st.Code() == codes.Unavailable, errors.Is(err, errDialTimeout):
		return s.unreachable(err)
	}
	return connect.NewError(code, err)
}

// unreachable records that the stream found its endpoint unreachable,
// and returns the error of that.
func (s *backendStream) unreachable(err error) error {
	s.release()
	if s.ctx.Err() != nil {
		return contextError(s.ctx, err)
	}
	s.m.backend.failed(s.ctx, s.e, s.m.procedure, err)
	return connect.NewError(connect.CodeUnavailable, err)
}

// outgoingMetadata is the request header h as the metadata grpc-go sends:
// see grpcMetadata. grpc-go refuses a call whose metadata holds a value
// that is not printable ASCII, where an HTTP/2 header may hold any
// visible byte: such values, which no gRPC server would have received
// from a gRPC client, are left out.
func outgoingMetadata(h http.Header) metadata.MD {
	md := grpcMetadata(h)
	for k, vs := range md {
		if strings.HasSuffix(k, "-bin") {
			continue
		}
		for i := 0; i < len(vs); i++ {
			if !printableASCII(vs[i]) {
				vs = append(vs[:i], vs[i+1:]...)
				i--
			}
		}
		if len(vs) == 0 {
			delete(md, k)
		} else {
			md[k] = vs
		}
	}
	return md
}

func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// unaryOver sends msg on out, a new outbound stream of a unary or client
// streaming call, and returns the backend's answer whole.
func unaryOver(out connect.StreamingClientConn, msg *Message) (*connect.Response[Message], error) {
	if msg != nil {
		if err := out.Send(msg); err != nil && !errors.Is(err, io.EOF) {
			_ = out.CloseResponse()
			return nil, err
		}
	}
	if err := out.CloseRequest(); err != nil {
		_ = out.CloseResponse()
		return nil, err
	}
	return receiveAnswer(out)
}

// receiveAnswer receives the single message and the status of a unary
// answer on out, and closes out.
func receiveAnswer(out connect.StreamingClientConn) (*connect.Response[Message], error) {
	defer out.CloseResponse()
	header := out.ResponseHeader()
	res := new(Message)
	if err := out.Receive(res); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, connect.NewError(connect.CodeUnimplemented, errors.New("unary answer has no message"))
		}
		return nil, withHeader(err, header)
	}
	var extra Message
	switch err := out.Receive(&extra); {
	case err == nil:
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("unary answer has more than one message"))
	case !errors.Is(err, io.EOF):
		return nil, withHeader(err, header)
	}
	r := connect.NewResponse(res)
	copyResponseHeaders(r.Header(), header)
	copyResponseHeaders(r.Trailer(), out.ResponseTrailer())
	return r, nil
}

// withHeader adds the backend's response headers to the metadata of the
// error it sent, which the client receives with it.
func withHeader(err error, header http.Header) error {
	var ce *connect.Error
	if errors.As(err, &ce) && connect.IsWireError(ce) && len(header) > 0 {
		trailer := ce.Meta().Clone()
		for k := range ce.Meta() {
			delete(ce.Meta(), k)
		}
		copyResponseHeaders(ce.Meta(), header)
		copyResponseHeaders(ce.Meta(), trailer)
	}
	return err
}
