package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/internaltoken"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/telemetry"
	"github.com/portcullis/portcullis/gateway/token"
)

// Gateway is an assembled gateway. Build it with [New]; serve its
// [Gateway.Handler] and [Gateway.AdminHandler], or call
// [Gateway.ListenAndServe].
type Gateway struct {
	cfg       *config.Config
	logger    *slog.Logger
	catalog   *catalog.Catalog
	verifier  *token.Verifier // nil when no issuer is configured
	telemetry *telemetry.Telemetry
	store     ratelimit.Store
	backends  []*forward.Backend
	byRoute   map[string]*forward.Backend // by routed service, for /readyz and metrics
	handler   http.Handler
	admin     http.Handler
	closers   []func() error

	minter      *internaltoken.Minter // nil when no route has identity internal
	revocations *revocation.Set       // nil without issuers or with revocation.source none

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
	g := &Gateway{cfg: cfg, logger: o.logger, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = g.Close()
		}
	}()

	files, err := loadFiles(cfg.Descriptors, o.files)
	if err != nil {
		return nil, err
	}
	if g.catalog, err = newCatalog(files, cfg.Routes, g.logger); err != nil {
		return nil, err
	}
	services, err := routedServices(cfg.Routes, g.catalog)
	if err != nil {
		return nil, err
	}

	if g.telemetry, err = telemetry.New(ctx, append(o.telemetryOptions(cfg.Telemetry), telemetry.WithProcedures(procedures(services)...))...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	g.closers = append(g.closers, func() error { return g.telemetry.Shutdown(context.Background()) })
	c := &chain{telemetry: g.telemetry}
	c.edgeConfig(cfg, services)
	if err := g.newRevocations(ctx, o); err != nil {
		return nil, fmt.Errorf("revocation: %w", err)
	}
	meta, err := g.newResourceMetadata(cfg.Resource.Metadata())
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	if err := g.newAuthorizer(ctx, c, o, meta.authzOptions()...); err != nil {
		return nil, err
	}
	if err := g.newLimiters(c); err != nil {
		return nil, fmt.Errorf("rate limiting: %w", err)
	}

	if err := g.newMinter(); err != nil {
		return nil, fmt.Errorf("internal_tokens: %w", err)
	}

	mux := http.NewServeMux()
	handlerOptions := c.handlerOptions(nil)
	backends := make(map[string]*forward.Backend) // routes to one backend share its connections
	checker := &health{g: g, backends: make(map[string]*forward.Backend, len(services))}
	for i, route := range cfg.Routes {
		key := backendKey(route)
		backend, ok := backends[key]
		if !ok {
			if backend, err = g.newBackend(route); err != nil {
				return nil, fmt.Errorf("routes[%d].backend: %w", i, err)
			}
			backends[key] = backend
			g.backends = append(g.backends, backend)
		}
		checker.backends[route.Service] = backend
		routeOptions := handlerOptions
		if route.Exchange != nil {
			gate, err := newExchangeGate(route.Exchange)
			if err != nil {
				return nil, fmt.Errorf("routes[%d].exchange: %w", i, err)
			}
			routeOptions = c.handlerOptions(gate)
		}
		path, handler, err := forward.NewHandler(services[i], backend,
			forward.WithHandlerOptions(routeOptions...),
			forward.WithMaxTimeout(cfg.Limits.MaxTimeout.Std()),
			forward.WithMaxStreamTimeout(cfg.Limits.MaxStreamTimeout.Std()),
			forward.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
			forward.WithRequestBodyTimeout(cfg.Limits.RequestBodyTimeout.Std()),
			forward.WithStreamIdleTimeout(cfg.Limits.StreamIdleTimeout.Std()),
			forward.WithSensitiveHeaders(append(alwaysDropped[:len(alwaysDropped):len(alwaysDropped)], cfg.Limits.SensitiveHeaders...)...),
			forward.WithRequestHeaders(g.requestHeaders(route)),
			forward.WithStop(g.stop),
			forward.WithLogger(g.logger),
		)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		mux.Handle(path, handler)
	}
	mux.Handle(grpchealth.NewHandler(checker))
	if err := g.observeEndpoints(checker.backends); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
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
	if g.handler, err = c.edge(mux); err != nil {
		return nil, err
	}
	g.admin = g.newAdmin(o.clients)
	return g, nil
}

// Handler returns the handler of the main listener: every routed service,
// and gRPC reflection when enabled.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Catalog returns the catalog of the gateway's descriptors.
func (g *Gateway) Catalog() *catalog.Catalog { return g.catalog }

// Ready returns nil once the gateway can verify tokens: every trusted
// issuer's keys were fetched at least once, and the revocations read in
// full.
func (g *Gateway) Ready() error {
	if g.verifier == nil {
		return nil
	}
	return errors.Join(g.verifier.Ready(), g.revocations.Ready())
}

// Close releases the backends' connections, the rate limit store, the
// verifier's background refresh and telemetry, flushing pending spans.
func (g *Gateway) Close() error {
	var errs []error
	for _, b := range g.backends {
		errs = append(errs, b.Close())
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.backends, g.closers = nil, nil
	return errors.Join(errs...)
}
