package telemetry

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"
)

// WrapHandler returns h instrumented at the HTTP edge. It records each
// call that neither a gate wrapped with [Telemetry.WrapGate] nor
// [Telemetry.ServerInterceptor] recorded: those connect refuses while it
// reads the request, before the gate (an unsupported content type, 415; a
// method not allowed, 405; an invalid grpc-timeout or connect-timeout-ms;
// an unknown compression) or after it, before the interceptors (a message
// over the size limit, a body it cannot decode); a path no handler
// serves; a handler that panicked; and every call of a handler without
// those pieces, such as gRPC reflection. Each gets a server span, a count
// in portcullis.decisions and an access line, with what the client got:
// the code (from grpc-status in gRPC and gRPC-Web, from the error in the
// body or the HTTP status in Connect) and the HTTP status. The outcome is
// invalid_request, or error for a code or status of a server's failure.
// The protocol of a request in none of connect's is "http".
//
// Put it outermost, around all the gateway's handlers: its clock starts
// each call's span and duration. The response writer it passes on is an
// http.Flusher when the server's is, and unwraps to it for
// http.ResponseController (full duplex, deadlines). It costs a call one
// allocation: the request that carries the call's context.
//
// A nil Telemetry returns h itself.
func (t *Telemetry) WrapHandler(h http.Handler) http.Handler {
	if t == nil || h == nil {
		return h
	}
	return &edgeHandler{t: t, next: h}
}

type edgeHandler struct {
	t          *Telemetry
	next       http.Handler
	generation uint64 // recorded with each call when not 0
}

// ServeHTTP serves a call and records it if nothing else did.
func (e *edgeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := e.t
	c := &edgeCall{call: call{Context: r.Context(), start: t.cfg.now(), generation: e.generation}}
	c.w.ResponseWriter, c.w.recorded = w, &c.recorded
	var rw http.ResponseWriter = &c.w.responseWriter
	if _, ok := w.(http.Flusher); ok {
		rw = &c.w
	}
	served := false
	defer func() {
		if !served { // the handler panicked
			t.atEdge(c, r, true)
		}
	}()
	e.next.ServeHTTP(rw, r.WithContext(&c.call))
	served = true
	if !c.recorded.Load() {
		t.atEdge(c, r, false)
	}
}

// otherProcedure stands for the procedures a gateway does not know, in
// metrics and spans (semantic conventions: rpc.method "_OTHER").
var otherProcedure = newProcedure("_OTHER")

// maxPathLen bounds the path an access line or a span shows of a call to
// a procedure the gateway does not know.
const maxPathLen = 256

// atEdge records a call that ended at the edge, unrecorded.
func (t *Telemetry) atEdge(c *edgeCall, r *http.Request, panicked bool) {
	end := t.cfg.now()
	protocol := protocolOf(r)
	d := decision{generation: c.generation}
	if c.gated != nil {
		d.caller(c.gated)
	} else {
		d.caller(&c.call)
	}
	if panicked {
		d.code, d.message, d.outcome = connect.CodeInternal, "the handler panicked", outcomeError
	} else {
		d.code, d.message, d.httpStatus = responseStatus(&c.w.responseWriter, protocol)
		d.outcome = edgeOutcome(d.code, d.httpStatus)
	}
	p, name, original := c.procedure, "", ""
	if p == nil {
		p = t.procedures.lookup(r.URL.Path)
	}
	if p != nil {
		name = p.full
	} else {
		p, name = otherProcedure, r.URL.Path[:min(len(r.URL.Path), maxPathLen)]
		original = name
	}
	peer := connect.Peer{Addr: r.RemoteAddr, Protocol: protocol}
	var sc trace.SpanContext
	if !t.tracingOff {
		sc = t.serverSpan(&c.call, c.start, end, p, original, protocol, r.Header, &d)
	}
	t.count(&c.call, p, d.outcome)
	t.logCall(&c.call, name, peer, r.Header, &d, end.Sub(c.start), sc)
}

// edgeOutcome is the outcome of a call the edge records: the caller's
// mistake (invalid_request) unless the code or HTTP status is a server's
// failure.
func edgeOutcome(code connect.Code, status int) outcome {
	switch {
	case code == 0:
		return outcomeAllowed
	case status >= 500:
		return outcomeError
	case status != http.StatusOK:
		return outcomeInvalidRequest
	}
	switch code {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeInternal,
		connect.CodeUnavailable, connect.CodeDataLoss:
		return outcomeError
	}
	return outcomeInvalidRequest
}

// protocolOf names the protocol of a request as connect does, by its
// content type; "http" for one that speaks none of them.
func protocolOf(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/grpc-web"):
		return connect.ProtocolGRPCWeb
	case strings.HasPrefix(ct, "application/grpc"):
		return connect.ProtocolGRPC
	case r.Method == http.MethodGet, strings.HasPrefix(ct, "application/connect+"),
		strings.HasPrefix(ct, "application/proto"), strings.HasPrefix(ct, "application/json"):
		return connect.ProtocolConnect
	}
	return "http"
}
