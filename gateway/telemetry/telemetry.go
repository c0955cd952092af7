package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// scope is the instrumentation scope of the gateway's own spans and
// metrics.
const scope = "github.com/portcullis/portcullis/gateway/telemetry"

// Telemetry holds the trace and metric providers of one process and the
// interceptors that instrument its calls. Build it with [New]; it is safe
// for concurrent use.
//
// A nil *Telemetry is valid and turns everything off: its wrappers return
// what they wrap, its interceptors pass calls through untouched, its Record
// methods do nothing. That is how a gateway runs, and benchmarks, without telemetry.
type Telemetry struct {
	cfg        config
	propagator propagation.TextMapPropagator
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	tracer     trace.Tracer // the gateway's own spans: gate rejections
	tracingOff bool         // no span is ever recorded: skip building them

	server   *otelconnect.Interceptor // gateway handlers: spans start at the gate
	client   *otelconnect.Interceptor // forwarding clients
	service  *otelconnect.Interceptor // services behind the gateway
	serverIC *serverInterceptor
	clientIC *clientInterceptor
	tokens   *tokenHasher

	inst       instruments
	rpc        rpcDurations
	procedures procedures
	keys       keyCounts

	registry *prometheus.Registry
	metrics  http.Handler

	shutdownOnce sync.Once
	shutdownErr  error
	shutdowns    []func(context.Context) error
}

// New builds the telemetry of a process: an SDK TracerProvider and
// MeterProvider whose exporters the standard OTEL_* environment variables
// choose, a Prometheus registry for [Telemetry.MetricsHandler], the W3C
// trace-context and baggage propagator, and the instruments of the gateway.
// See the package documentation for what happens when no OTEL_* variable
// is set. Call [Telemetry.Shutdown] to flush what is buffered. New reports
// the options given values it cannot use.
func New(ctx context.Context, opts ...Option) (*Telemetry, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		cfg:    cfg,
		tokens: newTokenHasher(cfg.tokenHashKey),
		propagator: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{}, propagation.Baggage{},
		),
		registry: prometheus.NewRegistry(),
	}
	if err := t.registry.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	t.metrics = promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{Registry: t.registry})
	if err := t.setup(ctx); err != nil {
		_ = t.shutdown(context.WithoutCancel(ctx))
		return nil, err
	}
	return t, nil
}

// setup builds or adopts the providers, then the interceptors and
// instruments on top of them.
func (t *Telemetry) setup(ctx context.Context) error {
	cfg := &t.cfg
	disabled := sdkDisabled()
	var res *resource.Resource
	if !disabled && (cfg.tracerProvider == nil || cfg.meterProvider == nil) {
		var err error
		if res, err = newResource(ctx, cfg); err != nil {
			return fmt.Errorf("telemetry: resource: %w", err)
		}
	}
	switch {
	case cfg.tracerProvider != nil:
		t.tp = cfg.tracerProvider
	case disabled:
		t.tp, t.tracingOff = tracenoop.NewTracerProvider(), true
	case cfg.sampleNone && !cfg.trustRemote:
		// No trace starting here is sampled and no caller's decision is
		// followed: no span can ever be recorded, so none is built, and
		// telemetry costs a call only its metrics and its access line.
		t.tp, t.tracingOff = tracenoop.NewTracerProvider(), true
	default:
		tp, err := newTracerProvider(ctx, cfg, res)
		if err != nil {
			return fmt.Errorf("telemetry: traces: %w", err)
		}
		if tp == nil {
			t.tp, t.tracingOff = tracenoop.NewTracerProvider(), true
		} else {
			t.tp = tp
			t.shutdowns = append(t.shutdowns, tp.Shutdown)
		}
	}
	switch {
	case cfg.meterProvider != nil:
		t.mp = cfg.meterProvider
	case disabled:
		t.mp = metricnoop.NewMeterProvider()
	default:
		mp, err := newMeterProvider(ctx, res, t.registry)
		if err != nil {
			return fmt.Errorf("telemetry: metrics: %w", err)
		}
		t.mp = mp
		t.shutdowns = append(t.shutdowns, mp.Shutdown)
	}
	t.tracer = t.tp.Tracer(scope)

	meter := t.mp.Meter(scope)
	if err := errors.Join(t.inst.init(meter, &t.keys), t.rpc.init(meter)); err != nil {
		return fmt.Errorf("telemetry: instruments: %w", err)
	}
	t.shutdowns = append(t.shutdowns, func(context.Context) error { return t.inst.unregister() })

	var err error
	if t.server, t.client, t.service, err = t.newRPCInterceptors(); err != nil {
		return fmt.Errorf("telemetry: otelconnect: %w", err)
	}
	t.serverIC = &serverInterceptor{decision: decisionInterceptor{t: t}}
	t.clientIC = &clientInterceptor{t: t}
	if !t.tracingOff || t.cfg.trustRemote {
		// Spans, or callers' trace contexts passed on to the backends.
		t.serverIC.spans, t.clientIC.next = t.server, t.client
	}
	for _, p := range cfg.procedures {
		t.procedures.get(p)
	}
	return nil
}

// newRPCInterceptors builds the otelconnect interceptors: the gateway's
// server side, whose spans start when the gate starts; the forwarding
// client side; and the side of a service behind the gateway, which trusts
// its caller's trace context.
func (t *Telemetry) newRPCInterceptors() (server, client, service *otelconnect.Interceptor, err error) {
	common := []otelconnect.Option{
		otelconnect.WithMeterProvider(t.mp),
		otelconnect.WithPropagator(t.propagator),
		otelconnect.WithDurationHistogramOptions(metric.WithExplicitBucketBoundaries(rpcBuckets...)),
	}
	// The gateway's own sides record their durations themselves
	// (rpcDurations); services behind it keep otelconnect's.
	own := append(append([]otelconnect.Option(nil), common...), otelconnect.WithoutMetrics())
	serverTP := t.tp
	serverPropagator := t.propagator
	if t.tracingOff {
		if !t.cfg.trustRemote {
			// Nothing is traced and callers are not trusted: do not read
			// their trace context, so none reaches the backends through
			// the forwarding clients either.
			serverPropagator = propagation.NewCompositeTextMapPropagator()
		}
	} else {
		serverTP = gateTimedProvider{t.tp}
	}
	serverOpts := append(append([]otelconnect.Option(nil), own...),
		otelconnect.WithTracerProvider(serverTP),
		otelconnect.WithPropagator(serverPropagator),
	)
	if t.cfg.trustRemote {
		serverOpts = append(serverOpts, otelconnect.WithTrustRemote())
	}
	if server, err = otelconnect.NewInterceptor(serverOpts...); err != nil {
		return nil, nil, nil, err
	}
	clientOpts := append(append([]otelconnect.Option(nil), own...), otelconnect.WithTracerProvider(t.tp))
	if client, err = otelconnect.NewInterceptor(clientOpts...); err != nil {
		return nil, nil, nil, err
	}
	serviceOpts := append(append([]otelconnect.Option(nil), common...), otelconnect.WithTracerProvider(t.tp), otelconnect.WithTrustRemote())
	if service, err = otelconnect.NewInterceptor(serviceOpts...); err != nil {
		return nil, nil, nil, err
	}
	return server, client, service, nil
}

// ServerInterceptor returns the interceptor of the gateway's handlers: a
// server span per call (otelconnect's, started when the call started at
// the edge or the gate), and within it the recording of the call's
// decision: the client id and the outcome on the span, the count in
// portcullis.decisions, the calls in flight and the access line. Errors
// that are context errors leave it as the connect errors the client gets.
// It records what the interceptors after it decide, and what the handler
// returns: put it before the interceptors that authorize or limit calls.
// On clients it does nothing.
//
// A nil Telemetry returns an interceptor that wraps nothing.
func (t *Telemetry) ServerInterceptor() connect.Interceptor {
	if t == nil {
		return passThrough{}
	}
	return t.serverIC
}

// ClientInterceptor returns the interceptor of the clients that forward
// calls to backends: a client span per call, whose context it sends in
// traceparent so that the backend's span is its child. It also tells the
// gateway's handler interceptor that the call was let through, so errors
// the backend returns are not taken for the gateway's decisions.
//
// A nil Telemetry returns an interceptor that wraps nothing.
func (t *Telemetry) ClientInterceptor() connect.Interceptor {
	if t == nil {
		return passThrough{}
	}
	return t.clientIC
}

// ServiceInterceptor returns the interceptor of a service behind the
// gateway, for its handlers and clients alike: spans and RPC metrics, with
// server spans that continue the trace the gateway sent. It records no
// decision and writes no access line.
//
// A nil Telemetry returns an interceptor that wraps nothing.
func (t *Telemetry) ServiceInterceptor() connect.Interceptor {
	if t == nil {
		return passThrough{}
	}
	return t.service
}

// MetricsHandler returns the handler of the Prometheus /metrics endpoint:
// the gateway's metrics, its RPC durations and the Go runtime's,
// from a registry of its own. Mount it on the admin listener only.
//
// A nil Telemetry returns a handler that answers 404.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t == nil {
		return http.NotFoundHandler()
	}
	return t.metrics
}

// TracerProvider returns the provider of the process's spans, for other
// instrumented libraries; main may also make it the global provider.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return tracenoop.NewTracerProvider()
	}
	return t.tp
}

// MeterProvider returns the provider of the process's metrics.
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t == nil {
		return metricnoop.NewMeterProvider()
	}
	return t.mp
}

// Propagator returns the propagator of trace context and baggage: W3C
// traceparent, tracestate and baggage headers.
func (t *Telemetry) Propagator() propagation.TextMapPropagator {
	if t == nil {
		return propagation.NewCompositeTextMapPropagator()
	}
	return t.propagator
}

// Logger returns the logger of the access lines.
func (t *Telemetry) Logger() *slog.Logger {
	if t == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.cfg.logger
}

// Shutdown flushes the spans and metrics that are buffered and stops the
// providers New built (not those passed with options). Calls after the
// first return the first's result. Call it when the process stops, with a
// deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.shutdownOnce.Do(func() { t.shutdownErr = t.shutdown(ctx) })
	return t.shutdownErr
}

// shutdown stops what setup started, last first.
func (t *Telemetry) shutdown(ctx context.Context) error {
	var errs []error
	for _, fn := range slices.Backward(t.shutdowns) {
		errs = append(errs, fn(ctx))
	}
	return errors.Join(errs...)
}

// passThrough is the interceptor of a nil Telemetry: it wraps nothing, so
// a call pays nothing for it.
type passThrough struct{}

func (passThrough) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (passThrough) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (passThrough) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

var (
	_ connect.Interceptor = passThrough{}
	_ connect.Interceptor = (*clientInterceptor)(nil)
	_ connect.Interceptor = (*serverInterceptor)(nil)
	_ connect.Interceptor = (*decisionInterceptor)(nil)
)
