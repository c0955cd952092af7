package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/coalesce"
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

// Backend is one upstream service: the base URLs of its replicas (its
// endpoints, fixed or resolved from DNS), the protocol the gateway speaks
// to it and, per endpoint, a pool of HTTP/2 connections shared by every
// method routed to it. Each call goes to one endpoint chosen by the
// balancer (see [WithBalancer]); an endpoint that fails calls in a row is
// ejected for a while (see [WithOutlierDetection]); safe calls that find
// an endpoint unreachable are retried on another (see [WithRetries]).
// Create one per backend with [NewBackend] or [NewBackendEndpoints], share
// it between handlers, and Close it when the gateway stops.
type Backend struct {
	name          string // what URL returns
	scheme        string // http or https, the same for every endpoint
	protocol      Protocol
	clientOptions []connect.ClientOption
	cfg           backendConfig // for endpoints added later (DNS)

	set     atomic.Pointer[endpointSet]
	next    atomic.Uint32 // round robin
	retries atomic.Uint64
	budget  retryBudget
	// failedGone keeps the failures of endpoints DNS removed, so that
	// FailedCalls only grows.
	failedGone atomic.Uint64

	mu     sync.Mutex // endpoint set changes, ejections
	static []string

	ctx       context.Context // background work: probes, DNS
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// endpointSet is an immutable snapshot of a backend's endpoints: all of
// them, and those the balancer may choose now.
type endpointSet struct {
	all    []*endpoint
	usable []*endpoint
}

// connPool spreads requests over several transports, each of which holds
// its own HTTP/2 connection to the backend. It is a connect.HTTPClient
// without http.Client's redirect and cookie handling, which RPCs do not use.
type connPool struct {
	transports []*http.Transport
	next       atomic.Uint32
	coalesced  bool // h2c: its connections hold request headers (package coalesce)
}

// NewBackend returns a Backend for target, an absolute http:// (cleartext
// HTTP/2, "h2c") or https:// URL, optionally with a path prefix:
// "http://127.0.0.1:8081", "https://orders.internal:443/api". It reports
// invalid option values, naming the option.
func NewBackend(target string, opts ...BackendOption) (*Backend, error) {
	return NewBackendEndpoints([]string{target}, opts...)
}

// NewBackendEndpoints returns a Backend whose calls are balanced over the
// replicas at targets, URLs as [NewBackend] takes, all of the same
// scheme, and over those [WithDNS] resolves. targets may be empty when
// WithDNS is given.
func NewBackendEndpoints(targets []string, opts ...BackendOption) (*Backend, error) {
	cfg := backendConfig{
		protocol:    ProtocolGRPC,
		dialTimeout: DefaultDialTimeout,
		connections: DefaultConnections,
		logger:      slog.Default(),
		outlier:     DefaultOutlierDetection,
		retry:       DefaultRetryPolicy,
	}
	for _, opt := range opts {
		if opt == nil {
			cfg.invalid("NewBackend: nil option")
			continue
		}
		opt.applyToBackend(&cfg)
	}
	b := &Backend{protocol: cfg.protocol, clientOptions: cfg.clientOptions, static: targets}
	var names []string
	for _, target := range targets {
		u, err := parseEndpoint(target)
		if err != nil {
			return nil, err
		}
		if b.scheme == "" {
			b.scheme = u.Scheme
		} else if u.Scheme != b.scheme {
			cfg.invalid("backend URL %q: every endpoint must be %s://", target, b.scheme)
		}
		names = append(names, baseURL(u))
	}
	if cfg.dns != nil {
		if b.scheme == "" {
			b.scheme = cfg.dns.scheme
		} else if cfg.dns.scheme != b.scheme {
			cfg.invalid("WithDNS(%q, %q): the endpoints are %s://", cfg.dns.name, cfg.dns.scheme, b.scheme)
		}
		names = append(names, "dns:///"+cfg.dns.name)
	}
	if len(names) == 0 {
		cfg.invalid("NewBackendEndpoints: no endpoint URL and no WithDNS")
	}
	if cfg.tls != nil && b.scheme != "https" {
		cfg.invalid("backend URL %q: WithTLSConfig given for a cleartext URL", strings.Join(targets, ","))
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	b.name = strings.Join(names, ",")
	b.cfg = cfg
	b.budget.init(cfg.retry)
	b.ctx, b.stop = context.WithCancel(context.Background())
	set := &endpointSet{}
	for _, target := range targets {
		u, _ := url.Parse(target)
		set.all = append(set.all, b.newEndpoint(u, ""))
	}
	b.publish(set.all)
	if cfg.dns != nil {
		b.startDNS(cfg.dns)
	}
	return b, nil
}

// newEndpoint returns the endpoint at u, its probe started. authority,
// when set, is the name the endpoint is known by (DNS), while u holds its
// address.
func (b *Backend) newEndpoint(u *url.URL, authority string) *endpoint {
	e := &endpoint{
		url:       baseURL(u),
		host:      u.Host,
		authority: authority,
		prefix:    strings.TrimSuffix(u.Path, "/"),
		pool:      &connPool{transports: make([]*http.Transport, b.cfg.connections), coalesced: u.Scheme != "https"},
	}
	e.health.logger = b.cfg.logger
	e.health.backend = e.url
	for i := range e.pool.transports {
		e.pool.transports[i] = newTransport(u.Scheme == "https", authority, &b.cfg)
	}
	if b.cfg.healthInterval > 0 {
		var ctx context.Context
		ctx, e.stopProbe = context.WithCancel(b.ctx)
		e.probeDone = make(chan struct{})
		go b.probe(ctx, e, b.cfg.healthInterval, 2*b.cfg.dialTimeout)
	}
	return e
}

// publish makes all the backend's endpoints, and recomputes which of them
// the balancer may choose. The caller holds b.mu, or is the constructor.
func (b *Backend) publish(all []*endpoint) {
	set := &endpointSet{all: all}
	for _, e := range all {
		if e.usable() {
			set.usable = append(set.usable, e)
		}
	}
	b.set.Store(set)
}

// refresh recomputes the usable endpoints after a change of state.
func (b *Backend) refresh() {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.set.Load()
	if set == nil {
		// A probe answered while the constructor is still making the
		// endpoints: its first publish reads every endpoint's state.
		return
	}
	b.publish(set.all)
}

// newTransport returns a transport that keeps one HTTP/2 connection to the
// backend (more only when the backend's stream limit is reached).
func newTransport(secure bool, serverName string, cfg *backendConfig) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 30 * time.Second}
	protocols := new(http.Protocols)
	dial := dialer.DialContext
	if !secure {
		// h2c: a request's headers go out with its body (package
		// coalesce), where net/http writes them apart.
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return coalesce.Client(c), nil
		}
	}
	t := &http.Transport{
		DialContext:         dial,
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
		if serverName != "" {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			if t.TLSClientConfig.ServerName == "" {
				t.TLSClientConfig.ServerName, _, _ = net.SplitHostPort(serverName)
			}
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
	if p.coalesced && req.ContentLength < 0 && req.Body != nil && req.Body != http.NoBody {
		req = flushBeforeBody(req)
	}
	return t.RoundTrip(req)
}

// flushBeforeBody returns req with a body that, before each read, writes
// the headers its connection holds (package coalesce): a streaming body's
// first message may come late, or after the backend's, and its stream's
// headers must not wait for it. A unary body is there already and follows
// its headers at once, in the same write. A body the transport gets again
// to retry the request does the same, on whichever connection the retry
// goes.
func flushBeforeBody(req *http.Request) *http.Request {
	conn := new(atomic.Pointer[coalesce.Conn]) // the connection the request went on
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*coalesce.Conn); ok {
			conn.Store(c)
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	req.Body = &flushingBody{ReadCloser: req.Body, conn: conn}
	if getBody := req.GetBody; getBody != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			body, err := getBody()
			if err != nil {
				return nil, err
			}
			return &flushingBody{ReadCloser: body, conn: conn}, nil
		}
	}
	return req
}

// flushingBody is a streaming request body that flushes its connection's
// held headers before each read.
type flushingBody struct {
	io.ReadCloser
	conn *atomic.Pointer[coalesce.Conn]
}

// Read flushes the connection, then reads the body.
func (b *flushingBody) Read(p []byte) (int, error) {
	if c := b.conn.Load(); c != nil {
		_ = c.Flush() // a failed write fails the stream's own next write
	}
	return b.ReadCloser.Read(p)
}

// URL returns the backend's base URL, or its endpoints' URLs (and its
// DNS name as dns:///host:port) separated by commas.
func (b *Backend) URL() string { return b.name }

// Protocol returns the protocol the gateway speaks to the backend.
func (b *Backend) Protocol() Protocol { return b.protocol }

// Close stops the health probes and the DNS refresh, if any, and closes
// the endpoints' idle connections. Calls in flight are not interrupted;
// stop the servers that use the backend first. Closing a closed Backend
// does nothing.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.stop()
		b.wg.Wait()
		b.mu.Lock()
		all := b.set.Load().all
		for _, e := range all {
			b.retire(e)
		}
		b.mu.Unlock()
		for _, e := range all {
			e.waitProbe()
		}
	})
	for _, e := range b.set.Load().all {
		e.closeIdle()
	}
	return nil
}

// retire stops what runs for e; the caller holds b.mu, and then waits
// for e's probe to stop (without holding it).
func (b *Backend) retire(e *endpoint) {
	e.removed = true
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.stopProbe != nil {
		e.stopProbe()
	}
}

// waitProbe waits until e's probe, stopped by retire, has returned.
func (e *endpoint) waitProbe() {
	if e.probeDone != nil {
		<-e.probeDone
	}
}

func (e *endpoint) closeIdle() {
	for _, t := range e.pool.transports {
		t.CloseIdleConnections()
	}
}

var _ connect.HTTPClient = (*connPool)(nil)

// errorf returns an error of the package.
func errorf(format string, args ...any) error { return fmt.Errorf("forward: "+format, args...) }
