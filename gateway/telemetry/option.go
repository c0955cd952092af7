package telemetry

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures [New]. New reports an option given a value it
// cannot use.
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
	sampleNone     bool // the sample ratio is 0
	spanWriter     io.Writer
	trustRemote    bool
	now            func() time.Time
	quietAccess    bool   // no access line for calls that ended well
	tokenHashKey   []byte // the key of the access lines' token_hash
	procedures     []string
	errs           []error // what the options could not use
}

// minTokenHashKey is the shortest key WithTokenHashKey accepts: 128 bits.
const minTokenHashKey = 16

func newConfig(opts []Option) (config, error) {
	c := config{
		serviceName: "portcullis",
		now:         time.Now,
	}
	for _, o := range opts {
		if o == nil {
			c.invalid("nil option")
			continue
		}
		o.apply(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.tokenHashKey == nil {
		c.tokenHashKey = make([]byte, 32)
		_, _ = rand.Read(c.tokenHashKey) // never fails (crypto/rand)
	}
	return c, errors.Join(c.errs...)
}

// invalid records an option's value New cannot use.
func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("telemetry: "+format, args...))
}

// WithServiceName sets the service.name resource attribute of the providers
// New builds. The default is "portcullis"; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it. The name must not be empty.
func WithServiceName(name string) Option {
	return optionFunc(func(c *config) {
		if name == "" {
			c.invalid("empty service name")
			return
		}
		c.serviceName = name
	})
}

// WithServiceVersion sets the service.version resource attribute; "" sets
// none, the default.
func WithServiceVersion(version string) Option {
	return optionFunc(func(c *config) { c.serviceVersion = version })
}

// WithTracerProvider makes Telemetry use tp instead of building one from
// the environment. Shutdown leaves tp running: its owner shuts it down.
// Tests pass an SDK provider with an in-memory recorder.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp == nil {
			c.invalid("nil tracer provider")
			return
		}
		c.tracerProvider = tp
	})
}

// WithMeterProvider makes Telemetry use mp instead of building one from the
// environment. Shutdown leaves mp running. The metrics of mp are not on
// [Telemetry.MetricsHandler], which then serves only the Go runtime's.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp == nil {
			c.invalid("nil meter provider")
			return
		}
		c.meterProvider = mp
	})
}

// WithLogger sets the logger of the access lines. The default is
// slog.Default(); [NewLogger] builds the JSON logger a gateway wants.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			c.invalid("nil logger")
			return
		}
		c.logger = l
	})
}

// WithSampleRatio samples the given fraction of the traces that start at
// this service (0 keeps none, 1 keeps all) and follows the caller's
// decision for the others: a parent-based trace-id ratio sampler. Without
// it, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG choose, and the
// default samples every trace. At 0, unless [WithTrustRemote] lets callers'
// sampled traces through, no span can be recorded, and none is built.
// Ignored with [WithTracerProvider].
func WithSampleRatio(ratio float64) Option {
	return optionFunc(func(c *config) {
		if math.IsNaN(ratio) || ratio < 0 || ratio > 1 {
			c.invalid("sample ratio %v is not between 0 and 1", ratio)
			return
		}
		c.sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
		c.sampleNone = ratio == 0
	})
}

// WithSpanWriter prints every finished span to w as indented JSON as soon
// as it ends: readable traces for a development run, behind a command-line
// flag. It adds to the exporter OTEL_TRACES_EXPORTER chooses. Ignored with
// [WithTracerProvider].
func WithSpanWriter(w io.Writer) Option {
	return optionFunc(func(c *config) {
		if w == nil {
			c.invalid("nil span writer")
			return
		}
		c.spanWriter = w
	})
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
		if now == nil {
			c.invalid("nil clock")
			return
		}
		c.now = now
	})
}

// WithAccessLog turns the access line of calls that did not fail in the
// gateway on (the default) or off. Calls the gateway itself failed are
// logged at warn either way.
func WithAccessLog(on bool) Option {
	return optionFunc(func(c *config) { c.quietAccess = !on })
}

// WithTokenHashKey sets the key of the token_hash in access lines, an
// HMAC-SHA256 of the bearer token: replicas given the same key write the
// same token_hash for a token, so their lines correlate. The key must have
// at least 16 bytes; keep it as secret as a signing key, since with it a
// token seen elsewhere can be matched against the logs. The default is a
// random key per process. New copies the key.
func WithTokenHashKey(key []byte) Option {
	return optionFunc(func(c *config) {
		if len(key) < minTokenHashKey {
			c.invalid("token hash key of %d bytes, want at least %d", len(key), minTokenHashKey)
			return
		}
		c.tokenHashKey = append([]byte(nil), key...)
	})
}

// WithProcedures names the procedures the gateway serves, such as
// "/example.licensing.v1.LicensingService/ListRequirements". A call that
// [Telemetry.WrapHandler] records, because it was refused before any gate
// ran, is counted under its method only if the method is known: named
// here, or seen by a gate or [Telemetry.ServerInterceptor] since New.
// Other calls count under rpc.method "_OTHER", so that made-up paths cannot
// multiply the metrics' series.
func WithProcedures(procedures ...string) Option {
	return optionFunc(func(c *config) {
		for _, p := range procedures {
			if !isProcedure(p) {
				c.invalid("procedure %q is not of the form /package.Service/Method", p)
				continue
			}
			c.procedures = append(c.procedures, p)
		}
	})
}

// isProcedure reports whether name has the form connect gives procedures:
// "/package.Service/Method".
func isProcedure(name string) bool {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	return ok && strings.HasPrefix(name, "/") && service != "" && method != "" && !strings.Contains(method, "/")
}
