package telemetry

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// WrapGate returns a request gate that runs gate and times it as the
// call's authentication (portcullis.auth.duration).
//
// A gate runs before the interceptor chain, so the calls it rejects never
// reach otelconnect. For those, the returned gate records what the
// interceptors would have: a server span named and attributed as
// otelconnect names them, starting when the gate started and carrying the
// decision, the decision count and the access line. A call the gate lets
// through continues with a context that remembers when the gate started:
// its server span starts then too, so the span covers the gate.
//
// Wrap the gate that verifies tokens. When a handler has several gates,
// wrap each, or the function that runs them all. A nil Telemetry returns
// gate itself.
func (t *Telemetry) WrapGate(gate connect.RequestGateFunc) connect.RequestGateFunc {
	if t == nil || gate == nil {
		return gate
	}
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		start := t.cfg.now()
		c := callFrom(ctx) // an earlier wrapped gate's
		gated, err := gate(ctx, spec, peer, header)
		end := t.cfg.now()
		t.inst.authDuration.Record(ctx, end.Sub(start).Seconds(), t.inst.authOpts[classify(err)]...)
		if err != nil {
			if c != nil {
				start = c.start
			}
			t.rejected(ctx, start, end, spec, peer, header, err)
			return gated, err
		}
		if gated == nil {
			gated = ctx
		}
		if c != nil {
			return gated, nil
		}
		return newCall(gated, start), nil
	}
}

// rejected records a call a gate rejected.
func (t *Telemetry) rejected(ctx context.Context, start, end time.Time, spec connect.Spec, peer connect.Peer, header http.Header, err error) {
	p := t.procedures.get(spec.Procedure)
	d := decide(ctx, err, false)
	var sc trace.SpanContext
	if !t.tracingOff {
		sc = t.gateSpan(ctx, start, end, p, peer.Protocol, header, &d)
	}
	t.count(ctx, p, d.outcome)
	t.logCall(ctx, p.full, peer, header, &d, end.Sub(start), sc)
}

// gateSpan records the server span of a rejected call as otelconnect would
// have, and returns its context if it was recorded.
func (t *Telemetry) gateSpan(ctx context.Context, start, end time.Time, p *procedure, protocol string, header http.Header, d *decision) trace.SpanContext {
	opts := make([]trace.SpanStartOption, 0, 5)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(header))
		if !t.cfg.trustRemote {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
		}
	}
	status := statusCode(d.code)
	opts = append(opts, trace.WithAttributes(
		semconv.RPCSystemNameKey.String(rpcSystem(protocol)),
		p.method,
		semconv.RPCResponseStatusCodeKey.String(status),
		semconv.ErrorTypeKey.String(status),
	))
	_, span := t.tracer.Start(ctx, p.name, opts...)
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
