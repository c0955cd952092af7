package telemetry

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// serverInterceptor is the gateway's handler side: otelconnect's server
// span around the decision interceptor, which records on that span. spans
// is nil when no span can be recorded and no caller's trace is passed on.
type serverInterceptor struct {
	spans    connect.Interceptor
	decision decisionInterceptor
}

// WrapUnary instruments a unary handler; clients pass through.
func (i *serverInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	wrapped := i.decision.WrapUnary(next)
	if i.spans != nil {
		wrapped = i.spans.WrapUnary(wrapped)
	}
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		return wrapped(ctx, req)
	}
}

// WrapStreamingClient leaves clients alone.
func (*serverInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler instruments a streaming handler.
func (i *serverInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	wrapped := i.decision.WrapStreamingHandler(next)
	if i.spans != nil {
		wrapped = i.spans.WrapStreamingHandler(wrapped)
	}
	return wrapped
}

// decisionInterceptor runs inside otelconnect's server interceptor on the
// gateway's handlers: it records the call's decision on the span otelconnect
// started, counts the call and writes its access line.
type decisionInterceptor struct {
	t *Telemetry
}

// WrapUnary instruments a unary handler.
func (i *decisionInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	t := i.t
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		c := callFrom(ctx)
		if c == nil {
			c = newCall(ctx, t.cfg.now())
			ctx = c
		}
		start := time.Now()
		p := t.procedures.get(req.Spec().Procedure)
		t.inst.active.Add(ctx, 1, p.active...)
		defer t.inst.active.Add(ctx, -1, p.active...)
		res, err := next(ctx, req)
		err = coded(err)
		t.finish(ctx, c, p, req.Peer(), req.Header(), err, start)
		return res, err
	}
}

// WrapStreamingClient leaves clients alone.
func (i *decisionInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler instruments a streaming handler; the stream counts
// as in flight until the handler returns.
func (i *decisionInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	t := i.t
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		c := callFrom(ctx)
		if c == nil {
			c = newCall(ctx, t.cfg.now())
			ctx = c
		}
		start := time.Now()
		p := t.procedures.get(conn.Spec().Procedure)
		t.inst.active.Add(ctx, 1, p.active...)
		defer t.inst.active.Add(ctx, -1, p.active...)
		err := coded(next(ctx, conn))
		t.finish(ctx, c, p, conn.Peer(), conn.RequestHeader(), err, start)
		return err
	}
}

// finish records the decision of a call that passed the gate, and its
// duration since the handler's interceptors began, start (by the wall
// clock, as otelconnect measured it; the configured clock times the
// decision and the access line).
func (t *Telemetry) finish(ctx context.Context, c *call, p *procedure, peer connect.Peer, header http.Header, err error, start time.Time) {
	c.markRecorded()
	t.rpc.recordServer(ctx, p, peer.Protocol, err, time.Since(start))
	d := decide(ctx, err, c.forwarded.Load())
	elapsed := t.cfg.now().Sub(c.start)
	span := trace.SpanFromContext(ctx)
	var sc trace.SpanContext
	if span.IsRecording() {
		annotate(span, &d)
		sc = span.SpanContext()
	}
	t.count(ctx, p, d.outcome)
	t.logCall(ctx, p.full, peer, header, &d, elapsed, sc)
}

// count counts a call's decision.
func (t *Telemetry) count(ctx context.Context, p *procedure, o outcome) {
	t.inst.decisions.Add(ctx, 1, p.decisions[o]...)
	if o == outcomeRateLimited {
		t.inst.rateLimited.Add(ctx, 1, p.limited...)
	}
}

// outcomeAttributes are the portcullis.outcome attributes, built once.
var outcomeAttributes = func() (attrs [numOutcomes]attribute.KeyValue) {
	for o := range numOutcomes {
		attrs[o] = keyOutcome.String(o.String())
	}
	return attrs
}()

// annotate records a decision on a span: the outcome, the client and its
// tier, its client certificate, what a denial lacked and the limit that
// fired. Never the token, nor the certificate.
func annotate(span trace.Span, d *decision) {
	var attrs [6]attribute.KeyValue
	attrs[0] = outcomeAttributes[d.outcome]
	n := 1
	if d.generation != 0 {
		attrs[n] = keyGeneration.Int64(int64(d.generation))
		n++
	}
	if d.clientID != "" {
		attrs[n] = keyClientID.String(d.clientID)
		n++
	}
	if d.tier != "" {
		attrs[n] = keyTier.String(d.tier)
		n++
	}
	if len(d.missing) > 0 {
		attrs[n] = keyMissingPermissions.StringSlice(d.missing)
		n++
	}
	if d.policy != "" {
		attrs[n] = keyRateLimitPolicy.String(d.policy)
		n++
	}
	span.SetAttributes(attrs[:n]...)
	if d.cert != nil {
		span.SetAttributes(certSpanAttributes(d.cert)...)
	}
}

// clientInterceptor is the forwarding clients' side: their durations, a
// note in the inbound call that the call was forwarded, and otelconnect's
// client span around the call (next; nil when no span can be recorded and
// no caller's trace is passed on).
type clientInterceptor struct {
	t    *Telemetry
	next connect.Interceptor
}

// WrapUnary instruments a unary forwarding client.
func (i *clientInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	inner := next
	if i.next != nil {
		inner = i.next.WrapUnary(next)
	}
	t := i.t
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			return inner(ctx, req)
		}
		markForwarded(ctx)
		start := time.Now()
		res, err := inner(ctx, req)
		peer := req.Peer()
		t.rpc.recordClient(ctx, t.procedures.get(req.Spec().Procedure), peer.Protocol, peer.Addr, err, time.Since(start))
		return res, err
	}
}

// WrapStreamingClient instruments a streaming forwarding client.
func (i *clientInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	if i.next != nil {
		next = i.next.WrapStreamingClient(next)
	}
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		markForwarded(ctx)
		return i.t.timeClientStream(ctx, spec, next(ctx, spec))
	}
}

// WrapStreamingHandler instruments a handler as otelconnect does; the
// interceptor is meant for clients.
func (i *clientInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	if i.next == nil {
		return next
	}
	return i.next.WrapStreamingHandler(next)
}
