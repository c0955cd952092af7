package telemetry

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Attribute keys of the gateway's spans and metrics.
const (
	keyClientID           = attribute.Key("portcullis.client_id")
	keyTier               = attribute.Key("portcullis.tier")
	keyOutcome            = attribute.Key("portcullis.outcome")
	keyMissingPermissions = attribute.Key("portcullis.missing_permissions")
	keyRateLimitPolicy    = attribute.Key("portcullis.rate_limit.policy")
	keyIssuer             = attribute.Key("portcullis.issuer")
	keyResult             = attribute.Key("portcullis.result")
	keyGeneration         = attribute.Key("portcullis.generation")
)

var (
	// authBuckets resolve a token check from a microsecond (a cached
	// verification) to a second (a key set fetched on the way).
	authBuckets = []float64{
		1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
	}
	// rpcBuckets are finer than the specification's, which start at 5ms:
	// a gateway's calls often take less.
	rpcBuckets = []float64{
		100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
		75e-3, 100e-3, 250e-3, 500e-3, 750e-3, 1, 2.5, 5, 7.5, 10,
	}
)

// instruments are the gateway's own metrics, with the options of the
// measurements that do not depend on the procedure built once.
type instruments struct {
	authDuration  metric.Float64Histogram
	decisions     metric.Int64Counter
	rateLimited   metric.Int64Counter
	active        metric.Int64UpDownCounter
	jwksRefreshes metric.Int64Counter
	jwksKeys      metric.Int64ObservableGauge
	limiterErrors metric.Int64Counter

	authOpts     [numOutcomes][]metric.RecordOption
	registration metric.Registration
}

func (in *instruments) init(m metric.Meter, keys *keyCounts) error {
	var err, e error
	in.authDuration, e = m.Float64Histogram("portcullis.auth.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time the request gates took to admit or reject a call: the token's verification and permission check, and the other gates."),
		metric.WithExplicitBucketBoundaries(authBuckets...))
	err = errors.Join(err, e)
	in.decisions, e = m.Int64Counter("portcullis.decisions",
		metric.WithUnit("{call}"),
		metric.WithDescription("Calls by the gateway's decision (portcullis.outcome) and method."))
	err = errors.Join(err, e)
	in.rateLimited, e = m.Int64Counter("portcullis.rate_limit.rejections",
		metric.WithUnit("{call}"),
		metric.WithDescription("Calls rejected because a rate limit fired, by method."))
	err = errors.Join(err, e)
	in.active, e = m.Int64UpDownCounter("portcullis.calls.active",
		metric.WithUnit("{call}"),
		metric.WithDescription("Calls in flight past the gate, streams included, by method."))
	err = errors.Join(err, e)
	in.jwksRefreshes, e = m.Int64Counter("portcullis.jwks.refreshes",
		metric.WithUnit("{refresh}"),
		metric.WithDescription("Fetches of a trusted issuer's key set, by issuer and result (ok or error)."))
	err = errors.Join(err, e)
	in.jwksKeys, e = m.Int64ObservableGauge("portcullis.jwks.keys",
		metric.WithUnit("{key}"),
		metric.WithDescription("Keys in the last key set fetched from each trusted issuer."))
	err = errors.Join(err, e)
	in.limiterErrors, e = m.Int64Counter("portcullis.limiter.errors",
		metric.WithUnit("{error}"),
		metric.WithDescription("Failures of the shared rate-limit store (Redis)."))
	err = errors.Join(err, e)
	if err != nil {
		return err
	}
	for o := range numOutcomes {
		in.authOpts[o] = []metric.RecordOption{
			metric.WithAttributeSet(attribute.NewSet(keyOutcome.String(o.String()))),
		}
	}
	in.registration, err = m.RegisterCallback(keys.observe(in.jwksKeys), in.jwksKeys)
	return err
}

func (in *instruments) unregister() error {
	if in.registration == nil {
		return nil
	}
	return in.registration.Unregister()
}

// RecordAuth records the time it took to authenticate and authorize a
// call outside a gate wrapped with [Telemetry.WrapGate] (which records it
// itself), with the outcome err implies: nil for allowed, or the error
// that rejected the call.
func (t *Telemetry) RecordAuth(ctx context.Context, d time.Duration, err error) {
	if t == nil {
		return
	}
	t.inst.authDuration.Record(ctx, d.Seconds(), t.inst.authOpts[classify(err)]...)
}

// RecordJWKSRefresh records a fetch of issuer's key set: err is its
// failure, or nil, and keys the number of keys fetched. The gauge
// portcullis.jwks.keys reports the last successful count per issuer.
func (t *Telemetry) RecordJWKSRefresh(ctx context.Context, issuer string, err error, keys int) {
	if t == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		t.keys.set(issuer, keys)
	}
	t.inst.jwksRefreshes.Add(ctx, 1, metric.WithAttributes(keyIssuer.String(issuer), keyResult.String(result)))
}

// RecordLimiterError counts a failure of the shared rate-limit store.
func (t *Telemetry) RecordLimiterError(ctx context.Context) {
	if t == nil {
		return
	}
	t.inst.limiterErrors.Add(ctx, 1)
}

// keyCounts holds the last key count of each issuer for the observable
// gauge. Key sets are fetched rarely: a mutex is enough.
type keyCounts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (k *keyCounts) set(issuer string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.counts == nil {
		k.counts = make(map[string]int)
	}
	k.counts[issuer] = n
}

func (k *keyCounts) observe(gauge metric.Int64ObservableGauge) metric.Callback {
	return func(_ context.Context, o metric.Observer) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		for issuer, n := range k.counts {
			o.ObserveInt64(gauge, int64(n), metric.WithAttributes(keyIssuer.String(issuer)))
		}
		return nil
	}
}

// procedure holds what the telemetry of a procedure's calls needs, built
// on its first call: attribute sets are costly to build, cheap to reuse.
type procedure struct {
	full      string // "/pkg.Service/Method", as connect names it
	name      string // "pkg.Service/Method", the span name and rpc.method
	method    attribute.KeyValue
	active    []metric.AddOption
	limited   []metric.AddOption
	decisions [numOutcomes][]metric.AddOption
	server    *durationSets         // rpc.server.call.duration
	clients   cowMap[*durationSets] // rpc.client.call.duration, per backend address
}

func newProcedure(fullName string) *procedure {
	name := strings.TrimLeft(fullName, "/")
	p := &procedure{full: fullName, name: name, method: semconv.RPCMethodKey.String(name)}
	byMethod := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(p.method))}
	p.active, p.limited = byMethod, byMethod
	p.server = newDurationSets(p.method)
	for o := range numOutcomes {
		p.decisions[o] = []metric.AddOption{
			metric.WithAttributeSet(attribute.NewSet(p.method, keyOutcome.String(o.String()))),
		}
	}
	return p
}

// maxProcedures bounds the cache. Handlers have fixed procedures, so a
// gateway never comes near it; past it, procedures are built per call.
const maxProcedures = 1 << 12

// procedures caches a procedure per name, so the hot path reads it without
// a lock.
type procedures struct{ m cowMap[*procedure] }

// lookup returns the procedure of a name seen before, or nil: it never
// adds one, for names a caller made up.
func (ps *procedures) lookup(name string) *procedure {
	p, _ := ps.m.lookup(name)
	return p
}

func (ps *procedures) get(name string) *procedure {
	return ps.m.get(name, maxProcedures, func() *procedure { return newProcedure(name) })
}

// cowMap is a copy-on-write map: reads load it without a lock, and an
// entry is added by copying it under mu. It keeps at most the number of
// entries get is told; past them, get returns values it does not keep.
type cowMap[V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]V]
}

// lookup returns the value of key, if kept.
func (c *cowMap[V]) lookup(key string) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

// get returns the value of key, made by newValue and kept (while fewer
// than limit are) if it was not yet.
func (c *cowMap[V]) get(key string, limit int, newValue func() V) V {
	if v, ok := c.lookup(key); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[key]; ok {
			return v
		}
	}
	v := newValue()
	if old != nil && len(*old) >= limit {
		return v
	}
	var next map[string]V
	if old != nil {
		next = make(map[string]V, 1+len(*old))
		maps.Copy(next, *old)
	} else {
		next = make(map[string]V, 1)
	}
	next[key] = v
	c.m.Store(&next)
	return v
}
