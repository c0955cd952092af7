package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// Defaults of a Backend.
const (
	// DefaultDialTimeout bounds how long connecting to a backend may take
	// before the call fails with Unavailable.
	DefaultDialTimeout = 2 * time.Second
	// DefaultConnections is the number of HTTP/2 connections the gateway
	// opens to each backend (more open by themselves when a connection
	// reaches the backend's stream limit). One connection batches the
	// frames of concurrent calls into fewer writes; on two cores more
	// connections measured no faster (BenchmarkUnaryInterleaved). Raise it
	// with [WithConnections] on a machine with many cores, where one
	// connection's write lock and flow-control window become the limit.
	DefaultConnections = 1
)

// Backend is one upstream server: its base URL, the protocol the gateway
// speaks to it and a pool of HTTP/2 connections shared by every method
// routed to it. Create one per backend with [NewBackend], share it between
// handlers, and Close it when the gateway stops.
type Backend struct {
	base          string // scheme://host[/prefix], without trailing slash
	protocol      Protocol
	pool          *connPool
	clientOptions []connect.ClientOption
	health        health
	closeOnce     sync.Once
	stopProbe     context.CancelFunc // nil without a probe
	probeDone     chan struct{}      // closed when the probe has stopped
}

// connPool spreads requests over several transports, each of which holds
// its own HTTP/2 connection to the backend. It is a connect.HTTPClient
// without http.Client's redirect and cookie handling, which RPCs do not use.
type connPool struct {
	transports []*http.Transport
	next       atomic.Uint32
}

// NewBackend returns a Backend for target, an absolute http:// (cleartext
// HTTP/2, "h2c") or https:// URL, optionally with a path prefix:
// "http://127.0.0.1:8081", "https://orders.internal:443/api". It reports
// invalid option values, naming the option.
func NewBackend(target string, opts ...BackendOption) (*Backend, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("forward: backend URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("forward: backend URL %q: scheme must be http or https", target)
	case u.Host == "":
		return nil, fmt.Errorf("forward: backend URL %q: no host", target)
	case u.User != nil:
		return nil, errors.New("forward: backend URL must not carry user info")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("forward: backend URL %q: no query or fragment allowed", target)
	}
	cfg := backendConfig{
		protocol:    ProtocolGRPC,
		dialTimeout: DefaultDialTimeout,
		connections: DefaultConnections,
		logger:      slog.Default(),
	}
	for _, opt := range opts {
		if opt == nil {
			cfg.invalid("NewBackend: nil option")
			continue
		}
		opt.applyToBackend(&cfg)
	}
	if cfg.tls != nil && u.Scheme != "https" {
		cfg.invalid("backend URL %q: WithTLSConfig given for a cleartext URL", target)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	b := &Backend{
		base:          u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"),
		protocol:      cfg.protocol,
		pool:          &connPool{transports: make([]*http.Transport, cfg.connections)},
		clientOptions: cfg.clientOptions,
	}
	b.health.logger = cfg.logger
	b.health.backend = b.base
	for i := range b.pool.transports {
		b.pool.transports[i] = newTransport(u.Scheme == "https", &cfg)
	}
	if cfg.healthInterval > 0 {
		var ctx context.Context
		ctx, b.stopProbe = context.WithCancel(context.Background())
		b.probeDone = make(chan struct{})
		go b.probe(ctx, cfg.healthInterval, 2*cfg.dialTimeout)
	}
	return b, nil
}

// newTransport returns a transport that keeps one HTTP/2 connection to the
// backend (more only when the backend's stream limit is reached).
func newTransport(secure bool, cfg *backendConfig) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	t := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: cfg.dialTimeout,
		DisableCompression:  true, // connect negotiates compression itself
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 64, // HTTP/1.1 only (Connect over TLS without h2)
		HTTP2: &http.HTTP2Config{
			// What a backend may send ahead of a slow client, per stream:
			// the gateway buffers at most this much of each response.
			MaxReceiveBufferPerStream: 1 << 20,
			// Probe a connection that has been silent this long, and drop it
			// when the probe is not answered: a dead backend connection is
			// noticed even while a stream idles on it.
			SendPingTimeout: 15 * time.Second,
			PingTimeout:     10 * time.Second,
		},
		Protocols: protocols,
	}
	if secure {
		if cfg.tls != nil {
			t.TLSClientConfig = cfg.tls.Clone()
		}
		protocols.SetHTTP2(true)
		// gRPC needs HTTP/2; Connect and gRPC-Web unary and server
		// streaming calls work over HTTP/1.1 too.
		protocols.SetHTTP1(cfg.protocol != ProtocolGRPC)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// Do sends req on the next transport, round-robin.
func (p *connPool) Do(req *http.Request) (*http.Response, error) {
	t := p.transports[0]
	if n := uint32(len(p.transports)); n > 1 {
		t = p.transports[p.next.Add(1)%n]
	}
	return t.RoundTrip(req)
}

// URL returns the backend's base URL.
func (b *Backend) URL() string { return b.base }

// Protocol returns the protocol the gateway speaks to the backend.
func (b *Backend) Protocol() Protocol { return b.protocol }

// Close stops the health probe, if any, and closes the backend's idle
// connections. Calls in flight are not interrupted; stop the servers that
// use the backend first. Closing a closed Backend does nothing.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		if b.stopProbe != nil {
			b.stopProbe()
			<-b.probeDone
		}
	})
	for _, t := range b.pool.transports {
		t.CloseIdleConnections()
	}
	return nil
}

var _ connect.HTTPClient = (*connPool)(nil)
