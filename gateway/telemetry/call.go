package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// call is the state of one inbound call, carried by its context from the
// edge or the gate to the handler and on to the forwarding client. It is a
// context itself, so that carrying it costs one allocation and no more.
type call struct {
	context.Context

	start      time.Time   // when the edge, the first wrapped gate or the interceptor saw the call
	generation uint64      // the configuration generation serving the call; 0: not said
	forwarded  atomic.Bool // a forwarding client sent the call to a backend
	recorded   atomic.Bool // a gate or the interceptor recorded the call: the edge need not

	// What a gate that let the call through tells the edge, for a call
	// refused before the interceptors: its procedure, and the context the
	// gates passed on, with the caller's principal.
	procedure *procedure
	gated     context.Context
}

// edgeCall is a call the edge made, with the response writer it passed
// on: one allocation for both.
type edgeCall struct {
	call
	w flushWriter
}

type callKey struct{}

func newCall(parent context.Context, start time.Time) *call {
	return &call{Context: parent, start: start}
}

// Value returns the call for its key and asks the parent otherwise.
func (c *call) Value(key any) any {
	if key == (callKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// callFrom returns the call ctx carries, or nil.
func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// markRecorded tells the edge that c's call was recorded.
func (c *call) markRecorded() {
	if c != nil {
		c.recorded.Store(true)
	}
}

// markForwarded records, in the inbound call ctx belongs to, that the call
// went to a backend.
func markForwarded(ctx context.Context) {
	if c := callFrom(ctx); c != nil && !c.forwarded.Load() {
		c.forwarded.Store(true)
	}
}

// gateTimedProvider hands otelconnect tracers whose server spans start
// when the call started, at the edge or the gate, not when the interceptor
// chain did, so a span covers the token verification as well.
type gateTimedProvider struct {
	trace.TracerProvider
}

// Tracer returns a tracer that starts the spans of gated calls at the gate.
func (p gateTimedProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return gateTimedTracer{p.TracerProvider.Tracer(name, opts...)}
}

type gateTimedTracer struct {
	trace.Tracer
}

// Start starts a span, at the call's start when ctx carries a call.
func (t gateTimedTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if c := callFrom(ctx); c != nil {
		opts = append(opts, trace.WithTimestamp(c.start))
	}
	return t.Tracer.Start(ctx, name, opts...)
}
