package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
)

// Defaults of the forwarding handlers.
const (
	// DefaultMaxTimeout caps the deadline of a forwarded unary call, and is
	// its deadline when the client sends none.
	DefaultMaxTimeout = 30 * time.Second
	// DefaultMaxStreamTimeout caps the deadline of a forwarded stream, and
	// is its deadline when the client sends none.
	DefaultMaxStreamTimeout = time.Hour
	// DefaultMaxMessageBytes is the largest message forwarded either way,
	// gRPC's customary 4 MiB.
	DefaultMaxMessageBytes = 4 << 20
	// DefaultCompressMinBytes is the smallest response the gateway
	// compresses for clients that accept compression: smaller messages cost
	// more CPU to compress than they save on the wire.
	DefaultCompressMinBytes = 1024
	// DefaultRequestBodyTimeout bounds how long the request of a unary call
	// or of a server stream may take to arrive.
	DefaultRequestBodyTimeout = 10 * time.Second
	// DefaultStreamIdleTimeout ends a client or bidi stream whose client
	// has sent nothing for this long.
	DefaultStreamIdleTimeout = 5 * time.Minute
)

// An Option configures the handler built by [NewHandler].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	gate               connect.RequestGateFunc
	interceptors       []connect.Interceptor
	handlerOptions     []connect.HandlerOption
	maxTimeout         time.Duration
	maxStreamTimeout   time.Duration
	maxMessageBytes    int
	requestBodyTimeout time.Duration
	streamIdleTimeout  time.Duration
	stop               <-chan struct{}
	sensitive          []string
	requestHeaders     func(context.Context, http.Header)
	logger             *slog.Logger
	errs               []error // invalid option values
}

func newConfig(opts []Option) *config {
	c := &config{
		maxTimeout:         DefaultMaxTimeout,
		maxStreamTimeout:   DefaultMaxStreamTimeout,
		maxMessageBytes:    DefaultMaxMessageBytes,
		requestBodyTimeout: DefaultRequestBodyTimeout,
		streamIdleTimeout:  DefaultStreamIdleTimeout,
		logger:             slog.Default(),
	}
	for _, opt := range opts {
		opt.apply(c)
	}
	return c
}

// invalid records an invalid option value, which NewHandler reports.
func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("forward: "+format, args...))
}

// nonNegative returns an option that sets *field to d, for durations where
// zero means "none" and a negative value is an error.
func nonNegative(name string, d time.Duration, field func(*config) *time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("%s(%v): must not be negative (zero means none)", name, d)
			return
		}
		*field(c) = d
	})
}

// WithHandlerOptions adds options to every method's connect.Handler, after
// the forwarding defaults (so they win): interceptors such as
// authentication, authorization, rate limiting and telemetry, request
// gates, compression settings. Interceptors see the method's
// protoreflect.MethodDescriptor as Spec().Schema and a *[Message] as the
// request.
func WithHandlerOptions(opts ...connect.HandlerOption) Option {
	return optionFunc(func(c *config) {
		for _, opt := range opts {
			if opt == nil {
				c.invalid("WithHandlerOptions: nil option")
				return
			}
		}
		c.handlerOptions = append(c.handlerOptions, opts...)
	})
}

// WithGate sets the request gate of every method: the decision on a
// call's headers, before any byte of its body is read. It runs for the
// calls of every transport, connect's handlers and [Service.ServeGRPC] alike;
// a gate given in [WithHandlerOptions] runs only for connect's handlers.
// Given again, it replaces the earlier gate: to run several, make them one
// gate that runs them in turn.
func WithGate(gate connect.RequestGateFunc) Option {
	return optionFunc(func(c *config) {
		if gate == nil {
			c.invalid("WithGate: nil gate")
			return
		}
		c.gate = gate
	})
}

// WithInterceptors adds handler interceptors to every method, outermost
// first, for the calls of every transport, as [WithGate] does.
// [Service.ServeGRPC] runs their WrapStreamingHandler for every kind of
// method, unary ones too, as connect runs it for streams; connect's
// handlers run WrapUnary for unary methods. Interceptors see the method's
// protoreflect.MethodDescriptor as Spec().Schema and a *[Message] as the
// request.
func WithInterceptors(interceptors ...connect.Interceptor) Option {
	return optionFunc(func(c *config) {
		for _, i := range interceptors {
			if i == nil {
				c.invalid("WithInterceptors: nil interceptor")
				return
			}
		}
		c.interceptors = append(c.interceptors, interceptors...)
	})
}

// WithMaxTimeout caps the deadline of forwarded unary calls: the backend
// gets the client's timeout or d, whichever is shorter, and d when the
// client sets none. Zero removes the cap; a negative d is an error. The
// default is [DefaultMaxTimeout].
func WithMaxTimeout(d time.Duration) Option {
	return nonNegative("WithMaxTimeout", d, func(c *config) *time.Duration { return &c.maxTimeout })
}

// WithMaxStreamTimeout is [WithMaxTimeout] for streaming calls. The default
// is [DefaultMaxStreamTimeout].
func WithMaxStreamTimeout(d time.Duration) Option {
	return nonNegative("WithMaxStreamTimeout", d, func(c *config) *time.Duration { return &c.maxStreamTimeout })
}

// WithMaxMessageBytes sets the largest message forwarded, in either
// direction. A larger request message is refused with ResourceExhausted
// before it reaches the backend, as soon as its size is known: from the
// request's Content-Length or a message's length prefix, before the
// message is read, and while a compressed message inflates, before it
// inflates further (unless [WithHandlerOptions] registers a gzip
// decompressor of its own). A larger response message fails the call the
// same way. Zero removes the limit; a negative n is an error. The default
// is [DefaultMaxMessageBytes].
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithMaxMessageBytes(%d): must not be negative (zero means no limit)", n)
			return
		}
		c.maxMessageBytes = n
	})
}

// WithRequestBodyTimeout bounds how long the request of a unary call, or
// of a server stream, may take to arrive, from the moment the handler
// starts (before request gates run) to the end of the request body. A
// client that sends it too slowly, or not at all, gets DeadlineExceeded
// ("request body not received within 10s"), and its stream, or its
// HTTP/1.1 connection, is closed. Zero removes the bound; a negative d is
// an error. The default is [DefaultRequestBodyTimeout].
//
// DeadlineExceeded is the code for an operation that ran out of time,
// which is what happened: the client's upload took longer than the gateway
// allows. The request was not invalid, so InvalidArgument would mislead
// the client and hide slow or stalled clients among malformed requests;
// and it is not worth retrying at once, which Unavailable would invite.
func WithRequestBodyTimeout(d time.Duration) Option {
	return nonNegative("WithRequestBodyTimeout", d, func(c *config) *time.Duration { return &c.requestBodyTimeout })
}

// WithStreamIdleTimeout ends a client or bidi stream whose client has sent
// nothing for d while the gateway was waiting for its next message, with
// DeadlineExceeded ("no request data received for 5m0s"), as
// [WithRequestBodyTimeout] does. Time the gateway spends waiting for the
// backend to take a message does not count, nor does the time after the
// client has closed its side. Zero removes the bound; a negative d is an
// error. The default is [DefaultStreamIdleTimeout].
func WithStreamIdleTimeout(d time.Duration) Option {
	return nonNegative("WithStreamIdleTimeout", d, func(c *config) *time.Duration { return &c.streamIdleTimeout })
}

// WithStop sets a channel whose closing ends every call still in flight at
// once, whatever it is doing (receiving the request, waiting for the
// backend, streaming), with Unavailable and the message "gateway shutting
// down", so that clients retry elsewhere; calls that arrive afterwards are
// refused the same way. Close it at the end of a graceful drain, before
// the server is closed. The handler watches the channel with one
// goroutine, which ends when the channel is closed. Nil, the default,
// means no stop.
func WithStop(stop <-chan struct{}) Option {
	return optionFunc(func(c *config) { c.stop = stop })
}

// WithSensitiveHeaders names request headers never forwarded to the
// backend, in addition to hop-by-hop headers, protocol headers and headers
// starting with [ReservedHeaderPrefix]. Authorization is forwarded unless
// named here. A name that is not a valid header name is an error.
func WithSensitiveHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, name := range names {
			if !validHeaderName(name) {
				c.invalid("WithSensitiveHeaders(%q): not a valid header name", name)
				continue
			}
			c.sensitive = append(c.sensitive, http.CanonicalHeaderKey(name))
		}
	})
}

// WithRequestHeaders sets a function that adds headers to every forwarded
// request, after the client's headers were filtered. It runs inside the
// interceptor chain's context, so it can read what interceptors put there
// (such as the verified caller) and set headers under
// [ReservedHeaderPrefix], which clients cannot forge. It must be safe for
// concurrent use.
func WithRequestHeaders(f func(ctx context.Context, header http.Header)) Option {
	return optionFunc(func(c *config) { c.requestHeaders = f })
}

// WithLogger sets where calls that fail for a reason other than an
// unreachable backend (such as a protocol error) are logged, one line
// each; clients only see a generic message, never the backend's address.
// A backend's outages are logged once, by the backend (see
// [WithBackendLogger]). The default is slog.Default(); nil disables the
// log.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// A BackendOption configures a [Backend].
type BackendOption interface {
	applyToBackend(*backendConfig)
}

type backendOptionFunc func(*backendConfig)

func (f backendOptionFunc) applyToBackend(c *backendConfig) { f(c) }

type backendConfig struct {
	protocol       Protocol
	tls            *tls.Config
	dialTimeout    time.Duration
	connections    int
	clientOptions  []connect.ClientOption
	healthInterval time.Duration
	logger         *slog.Logger
	balancer       Balancer
	outlier        OutlierDetection
	retry          RetryPolicy
	dns            *dnsConfig // nil without WithDNS
	errs           []error    // invalid option values
}

// invalid records an invalid option value, which NewBackend reports.
func (c *backendConfig) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("forward: "+format, args...))
}

// WithProtocol sets the protocol spoken to the backend. The default is
// [ProtocolGRPC]; an unknown protocol is an error.
func WithProtocol(p Protocol) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		if p < ProtocolGRPC || p > ProtocolGRPCWeb {
			c.invalid("WithProtocol(%v): unknown protocol", p)
			return
		}
		c.protocol = p
	})
}

// WithTLSConfig sets the TLS configuration for an https:// backend: root
// CAs, client certificates for mutual TLS, server name. Without it the
// system roots verify the backend. It is an error on an http:// backend.
func WithTLSConfig(cfg *tls.Config) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.tls = cfg })
}

// WithDialTimeout bounds how long connecting (and the TLS handshake) may
// take; a call to a backend that cannot be reached in time fails with
// Unavailable. It must be positive. The default is [DefaultDialTimeout].
func WithDialTimeout(d time.Duration) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		if d <= 0 {
			c.invalid("WithDialTimeout(%v): must be positive", d)
			return
		}
		c.dialTimeout = d
	})
}

// WithConnections sets how many HTTP/2 connections the gateway keeps to the
// backend; calls are spread over them round-robin. It must be at least
// one. The default is [DefaultConnections].
func WithConnections(n int) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		if n < 1 {
			c.invalid("WithConnections(%d): at least one connection is needed", n)
			return
		}
		c.connections = n
	})
}

// WithClientOptions adds options to the connect clients that call the
// backend, such as a telemetry interceptor that propagates trace context.
func WithClientOptions(opts ...connect.ClientOption) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		for _, opt := range opts {
			if opt == nil {
				c.invalid("WithClientOptions: nil option")
				return
			}
		}
		c.clientOptions = append(c.clientOptions, opts...)
	})
}

// WithHealthCheck probes the backend every interval, besides watching the
// outcome of calls (see [Backend.Err]): a gRPC health check
// (grpc.health.v1.Health/Check) sent over the backend's own connections
// in its protocol. Any answer, even Unimplemented from a backend that has
// no health service, shows the backend reachable; an answer NOT_SERVING,
// or none within twice the dial timeout, shows it down. The probe stops
// when the backend is closed. The interval must be positive. By default
// there is no probe.
func WithHealthCheck(interval time.Duration) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		if interval <= 0 {
			c.invalid("WithHealthCheck(%v): the interval must be positive", interval)
			return
		}
		c.healthInterval = interval
	})
}

// WithBackendLogger sets where the backend's health changes are logged:
// one WARN line when it becomes unavailable, with the error, and one INFO
// line when it recovers, with the number of calls that failed meanwhile.
// The lines name the backend's URL, which clients never see. The default
// is slog.Default(); nil disables the log.
func WithBackendLogger(l *slog.Logger) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.logger = l })
}
