package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/ratelimit"
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
	handler   http.Handler
	admin     http.Handler
	closers   []func() error
}

// New assembles a gateway from cfg. It fails, naming each problem, when a
// route names a service the descriptors do not know or whose access is not
// declared, or when a part cannot start. Key fetching goes on in the
// background: [Gateway.Ready] reports when every issuer's keys are in.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (_ *Gateway, err error) {
	o := newOptions(opts)
	g := &Gateway{cfg: cfg, logger: o.logger}
	defer func() {
		if err != nil {
			_ = g.Close()
		}
	}()

	files, err := loadFiles(cfg.Descriptors, o.files)
	if err != nil {
		return nil, err
	}
	if g.catalog, err = catalog.New(files); err != nil {
		return nil, err
	}
	services, err := routedServices(cfg.Routes, g.catalog)
	if err != nil {
		return nil, err
	}

	if g.telemetry, err = telemetry.New(ctx, o.telemetryOptions(cfg.Telemetry)...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	g.closers = append(g.closers, func() error { return g.telemetry.Shutdown(context.Background()) })

	if len(cfg.Issuers) > 0 {
		observe := token.WithKeysObserver(func(issuer string, keys int, err error) {
			g.telemetry.RecordJWKSRefresh(context.Background(), issuer, err, keys)
		})
		tokenOptions := append([]token.Option{observe}, o.tokenOptions...)
		if g.verifier, err = token.NewVerifier(ctx, issuers(cfg.Issuers), tokenOptions...); err != nil {
			return nil, fmt.Errorf("token verification: %w", err)
		}
		g.closers = append(g.closers, func() error { g.verifier.Close(); return nil })
	}
	authorizer, err := authz.New(g.catalog, g.verifier)
	if err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}

	if g.store, err = g.newStore(cfg.RateLimit); err != nil {
		return nil, fmt.Errorf("rate limiting: %w", err)
	}
	limiter, err := ratelimit.NewInterceptor(g.catalog, g.store, rateLimitOptions(cfg.RateLimit)...)
	if err != nil {
		return nil, fmt.Errorf("rate limiting: %w", err)
	}

	mux := http.NewServeMux()
	handlerOptions := []connect.HandlerOption{
		connect.WithRequestGate(g.telemetry.WrapGate(authorizer.Gate())),
		connect.WithInterceptors(g.telemetry.ServerInterceptor(), authorizer.Interceptor(), limiter),
	}
	backends := make(map[config.Route]*forward.Backend) // routes to one backend share its connections
	for i, route := range cfg.Routes {
		key := config.Route{Backend: route.Backend, Protocol: route.Protocol, CAFile: route.CAFile}
		backend, ok := backends[key]
		if !ok {
			if backend, err = newBackend(route, g.telemetry); err != nil {
				return nil, fmt.Errorf("routes[%d].backend: %w", i, err)
			}
			backends[key] = backend
			g.backends = append(g.backends, backend)
		}
		path, handler, err := forward.NewHandler(services[i], backend,
			forward.WithHandlerOptions(handlerOptions...),
			forward.WithMaxTimeout(cfg.Limits.MaxTimeout.Std()),
			forward.WithMaxMessageBytes(cfg.Limits.MaxMessageBytes),
			forward.WithSensitiveHeaders(append(alwaysDropped[:len(alwaysDropped):len(alwaysDropped)], cfg.Limits.SensitiveHeaders...)...),
			forward.WithRequestHeaders(principalHeaders),
			forward.WithLogger(g.logger),
		)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		mux.Handle(path, handler)
	}
	if cfg.ReflectionEnabled() {
		// Reflection answers for the routed services and the files they
		// need, never for other descriptors the gateway happens to hold.
		reflected, err := filesOf(services)
		if err != nil {
			return nil, fmt.Errorf("reflection: %w", err)
		}
		names := make([]string, len(services))
		for i, s := range services {
			names[i] = string(s.FullName())
		}
		reflector := grpcreflect.NewReflector(grpcreflect.NamerFunc(func() []string { return names }),
			grpcreflect.WithDescriptorResolver(reflected), grpcreflect.WithExtensionResolver(protoregistry.GlobalTypes))
		mux.Handle(grpcreflect.NewHandlerV1(reflector))
		mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	}
	g.handler = mux
	g.admin = g.newAdmin()
	return g, nil
}

// Handler returns the handler of the main listener: every routed service,
// and gRPC reflection when enabled.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Catalog returns the catalog of the gateway's descriptors.
func (g *Gateway) Catalog() *catalog.Catalog { return g.catalog }

// Ready returns nil once the gateway can verify tokens: every trusted
// issuer's keys were fetched at least once.
func (g *Gateway) Ready() error {
	if g.verifier == nil {
		return nil
	}
	return g.verifier.Ready()
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

// alwaysDropped are request headers never forwarded: cookies belong to the
// client's relation with the gateway's host, and the trace context is the
// gateway's to set (its client span's), not the caller's to pass through.
var alwaysDropped = []string{"Cookie", "Traceparent", "Tracestate", "Baggage"}

// principalHeaders tells the backend who is calling. The forwarding handler
// drops any such header a client sent, so a backend can trust them when
// only the gateway can reach it.
func principalHeaders(ctx context.Context, h http.Header) {
	if p, ok := token.FromContext(ctx); ok {
		h.Set(forward.ReservedHeaderPrefix+"Client-Id", p.ClientID)
		if p.Tier != "" {
			h.Set(forward.ReservedHeaderPrefix+"Tier", p.Tier)
		}
	}
}

// loadFiles merges the descriptor sources: images first, then the
// compiled-in files they do not already hold.
func loadFiles(d config.Descriptors, extra []*protoregistry.Files) (*protoregistry.Files, error) {
	sources := extra
	for _, image := range d.Images {
		files, err := catalog.LoadImage(image)
		if err != nil {
			return nil, err
		}
		sources = append(sources, files)
	}
	if d.UseCompiledIn() {
		sources = append(sources, protoregistry.GlobalFiles)
	}
	if len(sources) == 1 {
		return sources[0], nil
	}
	merged := new(protoregistry.Files)
	var errs []error
	for _, files := range sources {
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			if _, err := merged.FindFileByPath(fd.Path()); err == nil {
				return true // an earlier source has it
			}
			if err := merged.RegisterFile(fd); err != nil {
				errs = append(errs, fmt.Errorf("descriptors: %s: %w", fd.Path(), err))
			}
			return true
		})
	}
	return merged, errors.Join(errs...)
}

// filesOf returns a registry of the files that declare services and of
// everything they import.
func filesOf(services []protoreflect.ServiceDescriptor) (*protoregistry.Files, error) {
	files := new(protoregistry.Files)
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := files.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := add(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return files.RegisterFile(fd)
	}
	for _, s := range services {
		if err := add(s.ParentFile()); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// routedServices finds each route's service among the catalog's services,
// failing closed on any the catalog does not govern.
func routedServices(routes []config.Route, cat *catalog.Catalog) ([]protoreflect.ServiceDescriptor, error) {
	governed := make(map[protoreflect.FullName]protoreflect.ServiceDescriptor)
	for _, s := range cat.Services() {
		governed[s.FullName()] = s
	}
	services := make([]protoreflect.ServiceDescriptor, len(routes))
	var errs []error
	for i, r := range routes {
		name := protoreflect.FullName(r.Service)
		s, ok := governed[name]
		if !ok {
			reason := "is not in the descriptors"
			if d, err := cat.Files().FindDescriptorByName(name); err == nil {
				if _, isService := d.(protoreflect.ServiceDescriptor); isService {
					reason = fmt.Sprintf("declares no access: its file %s does not import gateway/v1/options.proto", d.ParentFile().Path())
				} else {
					reason = "is not a service"
				}
			}
			errs = append(errs, fmt.Errorf("routes[%d].service: %s %s", i, r.Service, reason))
			continue
		}
		services[i] = s
	}
	return services, errors.Join(errs...)
}

func issuers(cfgs []config.Issuer) []token.Issuer {
	out := make([]token.Issuer, len(cfgs))
	for i, c := range cfgs {
		out[i] = token.Issuer{
			Issuer:     c.Issuer,
			Audiences:  c.Audiences,
			Discover:   c.Discovery,
			JWKSURL:    c.JWKSURL,
			JWKSFile:   c.JWKSFile,
			Secret:     c.HMACSecret,
			Algorithms: c.Algorithms,
			Type:       c.Type,
		}
	}
	return out
}

func newBackend(route config.Route, tel *telemetry.Telemetry) (*forward.Backend, error) {
	opts := []forward.BackendOption{forward.WithClientOptions(connect.WithInterceptors(tel.ClientInterceptor()))}
	protocol, err := forward.ParseProtocol(route.Protocol)
	if err != nil {
		return nil, err
	}
	opts = append(opts, forward.WithProtocol(protocol))
	if route.CAFile != "" {
		pem, err := os.ReadFile(route.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", route.CAFile)
		}
		opts = append(opts, forward.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	return forward.NewBackend(route.Backend, opts...)
}

func (g *Gateway) newStore(cfg config.RateLimit) (ratelimit.Store, error) {
	if cfg.Store != "redis" {
		memory := ratelimit.NewMemory(ratelimit.WithMaxKeys(cfg.MaxKeys))
		g.closers = append(g.closers, memory.Close)
		return memory, nil
	}
	// Decisions must fail fast: the timeout bounds each round trip through
	// the context, and a failed one is not retried, so that an outage
	// switches to the failure policy within one timeout.
	client := redis.NewClient(&redis.Options{
		Addr:                  cfg.Redis.Addr,
		Password:              cfg.Redis.Password,
		DB:                    cfg.Redis.DB,
		DialTimeout:           max(cfg.Redis.Timeout.Std()*4, 200*time.Millisecond),
		ReadTimeout:           cfg.Redis.Timeout.Std(),
		WriteTimeout:          cfg.Redis.Timeout.Std(),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
	})
	g.closers = append(g.closers, client.Close)
	policy := ratelimit.FailOpen
	if cfg.Redis.OnFailure == "closed" {
		policy = ratelimit.FailClosed
	}
	store, err := ratelimit.NewRedis(client,
		ratelimit.WithKeyPrefix(cfg.Redis.Prefix),
		ratelimit.WithTimeout(cfg.Redis.Timeout.Std()),
		ratelimit.WithFailurePolicy(policy),
		ratelimit.WithLogger(g.logger),
		ratelimit.WithObserver(func(e ratelimit.Event) {
			if e.Kind == ratelimit.EventFailure {
				g.telemetry.RecordLimiterError(context.Background())
			}
		}),
	)
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, store.Close)
	return store, nil
}

func rateLimitOptions(cfg config.RateLimit) []ratelimit.Option {
	policy := ratelimit.Policy{Default: rate(cfg.Default), Tiers: map[string]ratelimit.Tier{}}
	for name, t := range cfg.Tiers {
		policy.Tiers[name] = ratelimit.Tier{Multiplier: t.Multiplier, Override: rate(t.Override)}
	}
	opts := []ratelimit.Option{ratelimit.WithPolicy(policy)}
	var proxies []netip.Prefix
	for _, p := range cfg.TrustedProxies {
		if prefix, err := netip.ParsePrefix(p); err == nil {
			proxies = append(proxies, prefix)
		} else if addr, err := netip.ParseAddr(p); err == nil {
			proxies = append(proxies, netip.PrefixFrom(addr, addr.BitLen()))
		}
	}
	if len(proxies) > 0 {
		opts = append(opts, ratelimit.WithTrustedProxies(proxies...))
	}
	return opts
}

func rate(r *config.Rate) *catalog.RateLimit {
	if r == nil {
		return nil
	}
	return &catalog.RateLimit{Requests: r.Requests, Period: r.Period.Std(), Burst: max(r.Burst, 1)}
}
