package telemetry

import (
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config holds what the options set; newConfig fills in the defaults.
type config struct {
	serviceName    string
	serviceVersion string
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	logger         *slog.Logger
	sampler        sdktrace.Sampler
	spanWriter     io.Writer
	trustRemote    bool
	now            func() time.Time
	quietAccess    bool // no access line for calls that ended well
}

func newConfig(opts []Option) config {
	c := config{
		serviceName: "portcullis",
		now:         time.Now,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

// WithServiceName sets the service.name resource attribute of the providers
// New builds. The default is "portcullis"; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it.
func WithServiceName(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.serviceName = name
		}
	})
}

// WithServiceVersion sets the service.version resource attribute.
func WithServiceVersion(version string) Option {
	return optionFunc(func(c *config) { c.serviceVersion = version })
}

// WithTracerProvider makes Telemetry use tp instead of building one from
// the environment. Shutdown leaves tp running: its owner shuts it down.
// Tests pass an SDK provider with an in-memory recorder.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider makes Telemetry use mp instead of building one from the
// environment. Shutdown leaves mp running. The metrics of mp are not on
// [Telemetry.MetricsHandler], which then serves only the Go runtime's.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithLogger sets the logger of the access lines. The default is
// slog.Default(); [NewLogger] builds the JSON logger a gateway wants.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithSampleRatio samples the given fraction of the traces that start at
// this service (0 keeps none, 1 keeps all) and follows the caller's
// decision for the others: a parent-based trace-id ratio sampler. Without
// it, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose, and the
// default samples every trace. Ignored with [WithTracerProvider].
func WithSampleRatio(ratio float64) Option {
	return optionFunc(func(c *config) {
		c.sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	})
}

// WithSpanWriter prints every finished span to w as indented JSON as soon
// as it ends: readable traces for a development run, behind a command-line
// flag. It adds to the exporter OTEL_TRACES_EXPORTER chooses. Ignored with
// [WithTracerProvider].
func WithSpanWriter(w io.Writer) Option {
	return optionFunc(func(c *config) { c.spanWriter = w })
}

// WithTrustRemote makes the gateway's server spans children of the trace
// context that callers send in traceparent. By default a gateway at the
// edge does not let callers choose its trace ids or sampling: each call
// starts a new trace that links to the caller's span. Services behind the
// gateway use [Telemetry.ServiceInterceptor], which always trusts it.
func WithTrustRemote() Option {
	return optionFunc(func(c *config) { c.trustRemote = true })
}

// WithClock sets the clock that times calls and gates; the default is
// time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}

// WithAccessLog turns the access line of calls that did not fail in the
// gateway on (the default) or off. Calls the gateway itself failed are
// logged at warn either way.
func WithAccessLog(on bool) Option {
	return optionFunc(func(c *config) { c.quietAccess = !on })
}
