// Package telemetry makes every call through the gateway visible: an
// OpenTelemetry server span per inbound call and a client span per
// forwarded call, in one trace with the backend's; metrics of decisions,
// authentication latency and rate limits; and one JSON access line per
// call. It records who called and what the gateway decided, never the
// token.
//
// A gateway wires it into its chain, its forwarding clients and its admin
// listener. The pieces do not depend on where they are put; the gateway's
// chain puts them:
//
//	tel, err := telemetry.New(ctx,
//		telemetry.WithLogger(telemetry.NewLogger(os.Stdout, slog.LevelInfo)),
//	)
//	if err != nil {
//		return err
//	}
//	defer tel.Shutdown(context.WithoutCancel(ctx))
//
//	handlerOpts := []connect.HandlerOption{
//		connect.WithRequestGate(tel.WrapGate(guard, authenticate, limit)), // all the gates, in one call
//		connect.WithInterceptors(tel.ServerInterceptor(), messageLimiter),
//	}
//	handler := tel.WrapHandler(mux) // outermost
//	clientOpts := []connect.ClientOption{connect.WithInterceptors(tel.ClientInterceptor())}
//	admin.Handle("/metrics", tel.MetricsHandler())
//
// Each inbound call is recorded once, by the innermost of the first three
// that saw it:
//
//   - [Telemetry.ServerInterceptor], on a handler before the interceptors
//     that authorize or limit calls, records the calls that reach the
//     interceptors: otelconnect's server span, rpc.server.call.duration,
//     and the decision on the span, in portcullis.decisions and the access
//     line.
//   - [Telemetry.WrapGate], given all the gates of a handler in one call,
//     times them (portcullis.auth.duration) and records the calls they
//     reject, which never reach the interceptors: a span as otelconnect
//     would have made it, the decision count and the access line.
//   - [Telemetry.WrapHandler], outermost, records the calls that ended
//     before either: those connect refuses while it reads or decodes the
//     request (a content type, method, timeout or compression it does not
//     accept, a message too large or malformed), paths no handler serves,
//     handlers that panicked. Its clock starts each call.
//   - [Telemetry.ClientInterceptor], on the forwarding clients, records the
//     client span of a forwarded call and tells the others the call was let
//     through.
//
// A service behind the gateway builds its own Telemetry with its name and
// instruments its handlers with [Telemetry.ServiceInterceptor], so its
// spans continue the gateway's trace:
//
//	tel, err := telemetry.New(ctx, telemetry.WithServiceName("licensing"))
//	path, h := licensingv1connect.NewLicensingServiceHandler(svc,
//		connect.WithInterceptors(tel.ServiceInterceptor()))
//
// # Decisions
//
// The gateway's server span, the portcullis.decisions counter and the
// access line say what the gateway decided (portcullis.outcome): allowed,
// unauthenticated, denied, rate_limited, invalid_request when connect
// refused the request before any decision (an unsupported content type, a
// message too large), or error when the gateway failed before letting the
// call through. The outcome follows from the call's
// error: CodeUnauthenticated, CodePermissionDenied and CodeResourceExhausted
// from the gate or the interceptors. Once [Telemetry.ClientInterceptor] has
// seen the call go out to a backend, the call stays allowed whatever the
// backend answers, except for a CodeResourceExhausted error carrying a
// RateLimit-Policy, such as a limit on a stream's messages. The
// span also records portcullis.client_id and portcullis.tier from the
// [token.Principal] in the context, portcullis.missing_permissions from an
// error implementing [MissingPermissions], and portcullis.rate_limit.policy
// from the RateLimit-Policy metadata of a rate limit's error.
//
// # Configuration
//
// Exporters are chosen by the standard environment variables, through
// go.opentelemetry.io/contrib/exporters/autoexport: OTEL_TRACES_EXPORTER
// and OTEL_METRICS_EXPORTER (otlp, console, none, prometheus),
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL, the sampler
// by OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (or
// [WithSampleRatio]), the resource by OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES. OTEL_SDK_DISABLED=true turns traces and
// metrics off.
//
// With none of them set, as in `make run`, traces are off and cost
// nothing, and metrics are served on /metrics only. autoexport alone
// would export to OTLP on localhost:4318, where a new user has no
// collector: every batch would fail and be logged. So an unset
// OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER means none, unless an
// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or the signal's own),
// which means otlp as the specification says. To see spans:
//
//	OTEL_TRACES_EXPORTER=console make run          # one JSON object per span on stdout
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 make run   # to a collector or Jaeger
//
// and [WithSpanWriter] prints them indented, for a command-line flag.
//
// The gateway does not trust the trace context its callers send: a call
// starts a new trace that links to the caller's span, so callers choose
// neither trace ids nor sampling. [WithTrustRemote] makes the caller's
// span the parent instead. Services behind the gateway always trust it.
//
// # Metrics
//
// With the units of the OpenTelemetry conventions (Prometheus names in
// parentheses):
//
//   - portcullis.auth.duration, s, by portcullis.outcome: time in the
//     gates [Telemetry.WrapGate] wraps (portcullis_auth_duration_seconds)
//   - portcullis.decisions, {call}, by rpc.method and portcullis.outcome
//     (portcullis_decisions_total); a call refused before any gate of a
//     procedure the gateway does not know (see [WithProcedures]) counts
//     under rpc.method "_OTHER"
//   - portcullis.rate_limit.rejections, {call}, by rpc.method
//     (portcullis_rate_limit_rejections_total)
//   - portcullis.calls.active, {call}, by rpc.method: calls past the gate,
//     streams included (portcullis_calls_active)
//   - portcullis.jwks.refreshes, {refresh}, by portcullis.issuer and
//     portcullis.result; portcullis.jwks.keys, {key}, by portcullis.issuer
//     (see [Telemetry.RecordJWKSRefresh])
//   - portcullis.limiter.errors, {error} (see [Telemetry.RecordLimiterError])
//   - rpc.server.call.duration and rpc.client.call.duration, {s}, with the
//     attributes otelconnect gives them (rpc.system.name, rpc.method,
//     rpc.response.status_code, error.type on a failure; server.address
//     and server.port on the client side), recorded by this package under
//     its own instrumentation scope with attribute sets built once per
//     procedure, code and backend, where otelconnect builds one per call;
//     otelconnect still makes the spans
//
// No metric has a client id: their cardinality stays that of the methods.
// Calls a gate rejects count in portcullis.decisions and
// portcullis.auth.duration, calls refused before the interceptors in
// portcullis.decisions; the RPC durations never see them.
//
// # Access lines
//
// Each call writes one line at info (warn when the gateway failed) with
// procedure, protocol, code (the one the client got), duration_ms,
// outcome, peer, http_status (for calls refused before the interceptors),
// client_id, tier, token_hash, token_id (the token's jti),
// missing_permissions, rate_limit_policy, error and trace_id when there is
// one; protocol is "http" for a request in none of connect's protocols.
// token_hash is the start of an HMAC-SHA256 of the bearer token, 16
// hex digits: it tells tokens apart, where a token's first characters,
// the encoded header of a JWT, are the same for all of an issuer's, and
// reveals nothing of the token. Its key is random per process, or the
// fleet's with [WithTokenHashKey] so that replicas' lines correlate.
// [NewLogger] builds the JSON logger and sets its level.
//
// # Off
//
// A nil *Telemetry turns all of it off at no cost per call: its wrappers
// return what they wrap, its interceptors add nothing to a handler or
// client.
package telemetry
