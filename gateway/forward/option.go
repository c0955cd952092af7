package forward

import (
	"context"
	"crypto/tls"
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
)

// An Option configures the handler built by [NewHandler].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	handlerOptions   []connect.HandlerOption
	maxTimeout       time.Duration
	maxStreamTimeout time.Duration
	maxMessageBytes  int
	sensitive        []string
	requestHeaders   func(context.Context, http.Header)
	logger           *slog.Logger
}

func newConfig(opts []Option) *config {
	c := &config{
		maxTimeout:       DefaultMaxTimeout,
		maxStreamTimeout: DefaultMaxStreamTimeout,
		maxMessageBytes:  DefaultMaxMessageBytes,
		logger:           slog.Default(),
	}
	for _, opt := range opts {
		opt.apply(c)
	}
	return c
}

// WithHandlerOptions adds options to every method's connect.Handler, after
// the forwarding defaults (so they win): interceptors such as
// authentication, authorization, rate limiting and telemetry, request
// gates, compression settings. Interceptors see the method's
// protoreflect.MethodDescriptor as Spec().Schema and a *[Message] as the
// request.
func WithHandlerOptions(opts ...connect.HandlerOption) Option {
	return optionFunc(func(c *config) {
		c.handlerOptions = append(c.handlerOptions, opts...)
	})
}

// WithMaxTimeout caps the deadline of forwarded unary calls: the backend
// gets the client's timeout or d, whichever is shorter, and d when the
// client sets none. Zero or less removes the cap. The default is
// [DefaultMaxTimeout].
func WithMaxTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxTimeout = d })
}

// WithMaxStreamTimeout is [WithMaxTimeout] for streaming calls. The default
// is [DefaultMaxStreamTimeout].
func WithMaxStreamTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxStreamTimeout = d })
}

// WithMaxMessageBytes sets the largest message forwarded, in either
// direction. A larger request message is refused with ResourceExhausted
// before it reaches the backend; a larger response message fails the call
// the same way. Zero or less removes the limit. The default is
// [DefaultMaxMessageBytes].
func WithMaxMessageBytes(n int) Option {
	return optionFunc(func(c *config) { c.maxMessageBytes = n })
}

// WithSensitiveHeaders names request headers never forwarded to the
// backend, in addition to hop-by-hop headers, protocol headers and headers
// starting with [ReservedHeaderPrefix]. Authorization is forwarded unless
// named here.
func WithSensitiveHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, name := range names {
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

// WithLogger sets where failures to reach a backend are logged (clients
// only see a generic message, never the backend's address). The default is
// slog.Default(); nil disables the log.
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
	protocol      Protocol
	tls           *tls.Config
	dialTimeout   time.Duration
	connections   int
	clientOptions []connect.ClientOption
}

// WithProtocol sets the protocol spoken to the backend. The default is
// [ProtocolGRPC].
func WithProtocol(p Protocol) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.protocol = p })
}

// WithTLSConfig sets the TLS configuration for an https:// backend: root
// CAs, client certificates for mutual TLS, server name. Without it the
// system roots verify the backend. It is an error on an http:// backend.
func WithTLSConfig(cfg *tls.Config) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.tls = cfg })
}

// WithDialTimeout bounds how long connecting (and the TLS handshake) may
// take; a call to a backend that cannot be reached in time fails with
// Unavailable. The default is [DefaultDialTimeout].
func WithDialTimeout(d time.Duration) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.dialTimeout = d })
}

// WithConnections sets how many HTTP/2 connections the gateway keeps to the
// backend; calls are spread over them round-robin. The default is
// [DefaultConnections].
func WithConnections(n int) BackendOption {
	return backendOptionFunc(func(c *backendConfig) { c.connections = n })
}

// WithClientOptions adds options to the connect clients that call the
// backend, such as a telemetry interceptor that propagates trace context.
func WithClientOptions(opts ...connect.ClientOption) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		c.clientOptions = append(c.clientOptions, opts...)
	})
}
