package forward

import (
	"net/http"
	"time"
)

// Defaults of the listener built by [NewServer].
const (
	// DefaultMaxConcurrentStreams is how many calls one client connection
	// may have in flight.
	DefaultMaxConcurrentStreams = 250
	// DefaultReadHeaderTimeout bounds how long a client may take to send a
	// request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes client connections idle this long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds the size of a request's headers.
	DefaultMaxHeaderBytes = 64 << 10
)

// A ServerOption configures the server built by [NewServer].
type ServerOption interface {
	applyToServer(*serverConfig)
}

type serverOptionFunc func(*serverConfig)

func (f serverOptionFunc) applyToServer(c *serverConfig) { f(c) }

type serverConfig struct {
	maxConcurrentStreams int
	readHeaderTimeout    time.Duration
	idleTimeout          time.Duration
	maxHeaderBytes       int
}

// WithMaxConcurrentStreams sets how many calls (HTTP/2 streams) one client
// connection may have in flight. The default is
// [DefaultMaxConcurrentStreams].
func WithMaxConcurrentStreams(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.maxConcurrentStreams = n })
}

// WithReadHeaderTimeout bounds how long a client may take to send a
// request's headers. The default is [DefaultReadHeaderTimeout].
func WithReadHeaderTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.readHeaderTimeout = d })
}

// WithIdleTimeout closes client connections that have had no call for d.
// The default is [DefaultIdleTimeout].
func WithIdleTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.idleTimeout = d })
}

// WithMaxHeaderBytes bounds the size of a request's headers. The default is
// [DefaultMaxHeaderBytes].
func WithMaxHeaderBytes(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.maxHeaderBytes = n })
}

// NewServer returns an http.Server for the gateway's listener: HTTP/1.1,
// HTTP/2 over TLS (when TLSConfig is set or ListenAndServeTLS is used) and
// cleartext HTTP/2 ("h2c", which gRPC clients use without TLS), with limits
// on concurrent streams, header size and slow or idle clients.
//
// It sets no ReadTimeout or WriteTimeout: they would cut long streams.
// Calls are bounded by the forwarding handlers' deadlines instead, and
// messages by [WithMaxMessageBytes]. Stop it with Shutdown, which lets
// calls in flight finish.
func NewServer(addr string, h http.Handler, opts ...ServerOption) *http.Server {
	cfg := serverConfig{
		maxConcurrentStreams: DefaultMaxConcurrentStreams,
		readHeaderTimeout:    DefaultReadHeaderTimeout,
		idleTimeout:          DefaultIdleTimeout,
		maxHeaderBytes:       DefaultMaxHeaderBytes,
	}
	for _, opt := range opts {
		opt.applyToServer(&cfg)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         protocols,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: cfg.maxConcurrentStreams,
			// Probe silent connections; drop those whose client is gone.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
}
