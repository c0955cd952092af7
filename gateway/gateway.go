package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/graph"
	"github.com/portcullis/portcullis/gateway/telemetry"
	"github.com/portcullis/portcullis/gateway/tlsfiles"
)

// Gateway is an assembled gateway. Build it with [New]; serve its
// [Gateway.Handler] and [Gateway.AdminHandler], or call
// [Gateway.ListenAndServe]. [Gateway.Reload] replaces its configuration
// while it serves.
type Gateway struct {
	cfg       *config.Config // the configuration at start: listeners, TLS, server limits, telemetry
	logger    *slog.Logger
	telemetry *telemetry.Telemetry // one for the process, whatever the generation
	opts      *options
	life      context.Context // New's: the background work of every generation ends with it
	handler   http.Handler
	admin     http.Handler
	closers   []func() error

	tlsConfig *tls.Config    // the main listener's, from the configuration at start; nil: cleartext
	clientCAs *tlsfiles.Pool // nil without tls.client_ca_files

	generations // the generation serving new calls, and older ones still finishing
	reloader

	draining atomic.Bool   // set when the drain begins
	stop     chan struct{} // closed at the drain deadline: calls still open end
	stopOnce sync.Once
}

// New assembles a gateway from cfg. It fails, naming each problem, when a
// route names a service the descriptors do not know or whose access is not
// declared, or when a part cannot start. Key fetching goes on in the
// background: [Gateway.Ready] reports when every issuer's keys are in.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (_ *Gateway, err error) {
	o := newOptions(opts)
	g := &Gateway{cfg: cfg, logger: o.logger, opts: o, life: ctx, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = g.Close()
		}
	}()
	if g.telemetry, err = telemetry.New(ctx, o.telemetryOptions(cfg.Telemetry)...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	g.closers = append(g.closers, func() error { return g.telemetry.Shutdown(context.Background()) })
	if err := g.reloadMetrics(); err != nil {
		return nil, err
	}
	if err := g.newListenerTLS(cfg.TLS); err != nil {
		return nil, err
	}
	gen, err := g.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.commit(gen)
	if err := g.observeEndpoints(); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	g.handler = http.HandlerFunc(g.serveCurrent)
	g.admin = g.newAdmin()
	g.watch(cfg)
	g.refreshReflection()
	return g, nil
}

// build assembles a generation from cfg beside prev, the one serving (nil
// at start), carrying over prev's parts whose settings did not change.
func (g *Gateway) build(cfg *config.Config, prev *generation) (_ *generation, err error) {
	o := g.opts.clone()
	gen := &generation{gw: g, cfg: cfg, logger: g.logger, telemetry: g.telemetry, stop: g.stop, prev: prev}
	gen.number = 1
	if prev != nil {
		gen.number = prev.number + 1
	}
	defer func() {
		gen.prev = nil
		if err != nil {
			_ = gen.close()
		}
	}()
	ctx := g.life

	files, err := loadFiles(cfg.Descriptors, o.files)
	if err != nil {
		return nil, err
	}
	if files, err = gen.addReflection(ctx, files, cfg.Routes); err != nil {
		return nil, err
	}
	if gen.catalog, err = newCatalog(files, cfg.Routes, g.logger); err != nil {
		return nil, err
	}
	services, err := routedServices(cfg.Routes, gen.catalog)
	if err != nil {
		return nil, err
	}
	if err := gen.checkReflectionPins(cfg.Routes, services); err != nil {
		return nil, err
	}

	if err := g.telemetry.AddProcedures(procedures(services)...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	c := &chain{telemetry: g.telemetry, generation: gen.number}
	c.edgeConfig(cfg, services)
	c.edgeCertificates(cfg, g.clientCAs)
	if err := gen.carryAuth(ctx, o); err != nil {
		return nil, err
	}
	meta, err := gen.newResourceMetadata(cfg.Resource.Metadata())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	dpopOptions, err := gen.carryDPoP(c)
	if err != nil {
		return nil, err
	}
	if err := gen.newAuthorizer(c, append(meta.authzOptions(), dpopOptions...)...); err != nil {
		return nil, err
	}
	if err := gen.carryStore(); err != nil {
		return nil, fmt.Errorf("rate limiting: %w", err)
	}
	if err := gen.newLimiters(c); err != nil {
		return nil, fmt.Errorf("rate limiting: %w", err)
	}

	if err := gen.carryMinter(); err != nil {
		return nil, fmt.Errorf("internal_tokens: %w", err)
	}

	mux := http.NewServeMux()
	forwardOptions := c.forwardOptions(nil, nil)
	gen.services = make(map[string]*forward.Service, len(services))
	gen.grpcEdge = c.grpcEdge
	backends := make(map[string]*forward.Backend) // routes to one backend share its connections
	checker := &health{g: g, backends: make(map[string]*forward.Backend, len(services))}
	for i, route := range cfg.Routes {
		key := backendKey(route)
		backend, ok := backends[key]
		if !ok {
			if backend, err = gen.carryBackend(route, key); err != nil {
				return nil, fmt.Errorf("routes[%d].backend: %w", i, err)
			}
			backends[key] = backend
			gen.backends = append(gen.backends, backend)
		}
		checker.backends[route.Service] = backend
		routeOptions := forwardOptions
		var exchange, certificate connect.RequestGateFunc
		if route.Exchange != nil {
			if exchange, err = newExchangeGate(route.Exchange); err != nil {
				return nil, fmt.Errorf("routes[%d].exchange: %w", i, err)
			}
		}
		if route.ClientCertificate == config.ClientCertificateRequired {
			certificate = requireCertificate
		}
		if exchange != nil || certificate != nil {
			routeOptions = c.forwardOptions(exchange, certificate)
		}
		path, handler, err := forward.NewHandler(services[i], backend, append(routeOptions,
			forward.WithMaxTimeout(cfg.Limits.MaxTimeout.Std()),
			forward.WithMaxStreamTimeout(cfg.Limits.MaxStreamTimeout.Std()),
			forward.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
			forward.WithRequestBodyTimeout(cfg.Limits.RequestBodyTimeout.Std()),
			forward.WithStreamIdleTimeout(cfg.Limits.StreamIdleTimeout.Std()),
			forward.WithSensitiveHeaders(droppedHeaders(cfg)...),
			forward.WithRequestHeaders(gen.requestHeaders(route)),
			forward.WithStop(gen.stop),
			forward.WithLogger(g.logger),
		)...)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		mux.Handle(path, handler)
		gen.services[string(services[i].FullName())] = handler
	}
	mux.Handle(grpchealth.NewHandler(checker))
	gen.byRoute = checker.backends
	meta.mount(mux)
	if cfg.ReflectionEnabled() {
		reflector, err := newReflector(services)
		if err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		mux.Handle(grpcreflect.NewHandlerV1(reflector))
		mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	}
	mux.Handle("/", forward.Unimplemented())
	if gen.handler, err = c.edge(mux); err != nil {
		return nil, err
	}
	gen.graph = graph.Handler(gen.catalog, g.opts.clients)
	return gen, nil
}

// Handler returns the handler of the main listener: every routed service,
// and gRPC reflection when enabled.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Catalog returns the catalog of the gateway's descriptors, in the
// generation serving new calls.
func (g *Gateway) Catalog() *catalog.Catalog { return g.current().catalog }

// Ready returns nil once the gateway can verify tokens: every trusted
// issuer's keys were fetched at least once, and the revocations read in
// full.
func (g *Gateway) Ready() error {
	gen := g.current()
	if gen == nil {
		return errors.New("no configuration is loaded")
	}
	return gen.ready()
}

// Close releases, in every generation, the backends' connections, the rate
// limit store and the verifier's background refresh, then stops watching
// the configuration and shuts telemetry down, flushing pending spans.
func (g *Gateway) Close() error {
	errs := []error{g.closeGenerations()}
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return errors.Join(errs...)
}
