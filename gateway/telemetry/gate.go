package telemetry

import (
	"context"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// WrapGate returns a request gate that runs gates in turn, as connect
// runs the gates of a handler, and times them as the call's
// authentication (portcullis.auth.duration). Give it all the gates of a
// handler in one call, in their order, such as an address guard, the
// token's verification and check, and the rate limit: each call is then
// timed and recorded once. Nil gates are skipped; with none left, WrapGate
// returns nil.
//
// Gates run before the interceptor chain, so the calls they reject never
// reach otelconnect. For those, the returned gate records what the
// interceptors would have: a server span named and attributed as
// otelconnect names them, starting when the call started (at the edge of
// [Telemetry.WrapHandler], or else at the gate) and carrying the decision,
// the decision count and the access line. A call the gates let through
// continues with a context that remembers when it started: its server span
// starts then too, so the span covers the gates. A context error a gate
// returns becomes the connect error the client gets (CodeCanceled,
// CodeDeadlineExceeded).
//
// A nil Telemetry returns a gate that runs gates and records nothing.
func (t *Telemetry) WrapGate(gates ...connect.RequestGateFunc) connect.RequestGateFunc {
	run := chainGates(gates)
	if t == nil || run == nil {
		return run
	}
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		start := t.cfg.now()
		c := callFrom(ctx) // the edge's, or an earlier wrapped gate's
		gated, err := run(ctx, spec, peer, header)
		end := t.cfg.now()
		err = coded(err)
		t.inst.authDuration.Record(ctx, end.Sub(start).Seconds(), t.inst.authOpts[classify(err)]...)
		if err != nil {
			if c != nil {
				start = c.start
				c.markRecorded()
			}
			if gated == nil {
				gated = ctx
			}
			t.rejected(gated, start, end, spec, peer, header, err)
			return gated, err
		}
		if gated == nil {
			gated = ctx
		}
		if c != nil {
			c.procedure, c.gated = t.procedures.get(spec.Procedure), gated
			return gated, nil
		}
		return newCall(gated, start), nil
	}
}

// chainGates returns a gate that runs gates in turn, each with the context
// the one before returned, until one fails; nil for no gate. A refusal
// comes with the context the refusing gate was given, so that it is
// recorded with what the gates before it learnt: a call the limiter refuses
// is recorded with the principal the authenticating gate found.
func chainGates(gates []connect.RequestGateFunc) connect.RequestGateFunc {
	gates = slices.DeleteFunc(slices.Clone(gates), func(g connect.RequestGateFunc) bool { return g == nil })
	switch len(gates) {
	case 0:
		return nil
	case 1:
		return gates[0]
	}
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		for _, gate := range gates {
			next, err := gate(ctx, spec, peer, header)
			if err != nil {
				return ctx, err
			}
			if next != nil {
				ctx = next
			}
		}
		return ctx, nil
	}
}

// rejected records a call a gate rejected.
func (t *Telemetry) rejected(ctx context.Context, start, end time.Time, spec connect.Spec, peer connect.Peer, header http.Header, err error) {
	p := t.procedures.get(spec.Procedure)
	d := decide(ctx, err, false)
	var sc trace.SpanContext
	if !t.tracingOff {
		sc = t.serverSpan(ctx, start, end, p, "", peer.Protocol, header, &d)
	}
	t.count(ctx, p, d.outcome)
	t.logCall(ctx, p.full, peer, header, &d, end.Sub(start), sc)
}

// serverSpan records the server span of a call the interceptors never saw
// as otelconnect would have, and returns its context if it was recorded.
// original is the path of a call to a procedure the gateway does not know
// (p is then otherProcedure).
func (t *Telemetry) serverSpan(ctx context.Context, start, end time.Time, p *procedure, original, protocol string, header http.Header, d *decision) trace.SpanContext {
	opts := make([]trace.SpanStartOption, 0, 5)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(header))
		if !t.cfg.trustRemote {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
		}
	}
	status := statusCode(d.code)
	system := rpcSystem(protocol)
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		semconv.RPCSystemNameKey.String(system),
		p.method,
		semconv.RPCResponseStatusCodeKey.String(status),
	)
	if d.code != 0 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(status))
	}
	name := p.name
	if original != "" {
		// Semantic conventions: an unknown method's span is named after
		// the system and keeps the method it was called by.
		name = system
		attrs = append(attrs, semconv.RPCMethodOriginalKey.String(original))
	}
	if d.httpStatus != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(d.httpStatus))
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	_, span := t.tracer.Start(ctx, name, opts...)
	defer span.End(trace.WithTimestamp(end))
	if !span.IsRecording() {
		return trace.SpanContext{}
	}
	annotate(span, d)
	if isServerError(d.code) {
		span.SetStatus(codes.Error, d.message)
	}
	return span.SpanContext()
}

// rpcSystem is the rpc.system.name of a protocol, as otelconnect names it.
func rpcSystem(protocol string) string {
	switch protocol {
	case connect.ProtocolGRPC, connect.ProtocolGRPCWeb:
		return "grpc"
	case connect.ProtocolConnect:
		return "connectrpc"
	}
	return protocol
}

// statusCode is the rpc.response.status_code of a code.
func statusCode(c connect.Code) string {
	if int(c) < len(statusCodes) {
		return statusCodes[c]
	}
	return c.String()
}

// isServerError reports whether a code marks a server span as failed, as
// otelconnect decides: the server's fault, not the caller's.
func isServerError(c connect.Code) bool {
	switch c {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeUnimplemented,
		connect.CodeInternal, connect.CodeUnavailable, connect.CodeDataLoss:
		return true
	}
	return false
}
