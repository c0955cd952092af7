package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
)

// spansOf returns the ended spans of a kind that a service recorded.
func spansOf(spans []sdktrace.ReadOnlySpan, kind trace.SpanKind, service string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() != kind {
			continue
		}
		if name, _ := s.Resource().Set().Value("service.name"); name.AsString() == service {
			out = append(out, s)
		}
	}
	return out
}

func oneSpan(t *testing.T, spans []sdktrace.ReadOnlySpan, kind trace.SpanKind, service string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := spansOf(spans, kind, service)
	if len(found) != 1 {
		t.Fatalf("%d %s spans of %s, want 1", len(found), kind, service)
	}
	return found[0]
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value
	}
	return m
}

// wantAttr checks a string attribute of a span; want "" means absent.
func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, key attribute.Key, want string) {
	t.Helper()
	v, ok := attrs(s)[key]
	switch {
	case want == "" && ok:
		t.Errorf("span %s: %s = %q, want none", s.Name(), key, v.Emit())
	case want != "" && v.AsString() != want:
		t.Errorf("span %s: %s = %q, want %q", s.Name(), key, v.Emit(), want)
	}
}

func rpcMethod(procedure string) string { return strings.TrimPrefix(procedure, "/") }

func TestTraceAcrossGatewayAndBackend(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackConfig{})
			res, err := s.client(p.opts...).ListRequirements(t.Context(),
				withToken(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA"}, tokenAllowed))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Msg.GetRequirements()) != 1 {
				t.Fatalf("response %v, want the backend's one requirement", res.Msg)
			}

			spans := s.spans.Ended()
			if len(spans) != 3 {
				t.Fatalf("%d spans, want 3", len(spans))
			}
			gwServer := oneSpan(t, spans, trace.SpanKindServer, "portcullis")
			gwClient := oneSpan(t, spans, trace.SpanKindClient, "portcullis")
			backend := oneSpan(t, spans, trace.SpanKindServer, "licensing")
			for _, span := range spans {
				if span.Name() != rpcMethod(procListRequirements) {
					t.Errorf("span name %q, want %q", span.Name(), rpcMethod(procListRequirements))
				}
				if span.SpanContext().TraceID() != gwServer.SpanContext().TraceID() {
					t.Errorf("%s span of %v in trace %s, want the gateway's %s", span.SpanKind(),
						span.Resource(), span.SpanContext().TraceID(), gwServer.SpanContext().TraceID())
				}
			}
			if gwServer.Parent().IsValid() {
				t.Errorf("gateway server span has parent %v, want a root", gwServer.Parent())
			}
			if gwClient.Parent().SpanID() != gwServer.SpanContext().SpanID() {
				t.Errorf("gateway client span's parent %s, want the server span %s", gwClient.Parent().SpanID(), gwServer.SpanContext().SpanID())
			}
			if backend.Parent().SpanID() != gwClient.SpanContext().SpanID() || !backend.Parent().IsRemote() {
				t.Errorf("backend span's parent %v, want the gateway's client span %s, remote", backend.Parent(), gwClient.SpanContext().SpanID())
			}
			wantSystem := map[string]string{"connect": "connectrpc", "grpc": "grpc", "grpcweb": "grpc"}[p.name]
			wantAttr(t, gwServer, "rpc.system.name", wantSystem)
			wantAttr(t, gwServer, "rpc.response.status_code", "OK")
			wantAttr(t, gwServer, "portcullis.outcome", "allowed")
			wantAttr(t, gwServer, "portcullis.client_id", "acme-billing")
			wantAttr(t, gwServer, "portcullis.tier", "pro")
			wantAttr(t, backend, "portcullis.outcome", "")
		})
	}
}

// decisionCase is a call and what the gateway's telemetry must say of it.
type decisionCase struct {
	name      string
	procedure string
	call      func(context.Context, licensingv1connect.LicensingServiceClient) error
	code      connect.Code
	outcome   string
	auth      string // the gate's outcome
	clientID  string
	missing   []string
	policy    string
	forwarded bool
	failed    bool // the gateway's span is marked an error
	tokenSent bool
}

func listRequirements(tok string) func(context.Context, licensingv1connect.LicensingServiceClient) error {
	return func(ctx context.Context, c licensingv1connect.LicensingServiceClient) error {
		_, err := c.ListRequirements(ctx, withToken(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA"}, tok))
		return err
	}
}

func listJurisdictions(tok string) func(context.Context, licensingv1connect.LicensingServiceClient) error {
	return func(ctx context.Context, c licensingv1connect.LicensingServiceClient) error {
		_, err := c.ListJurisdictions(ctx, withToken(&licensingv1.ListJurisdictionsRequest{}, tok))
		return err
	}
}

func getLicenceOrder(tok, id string) func(context.Context, licensingv1connect.LicensingServiceClient) error {
	return func(ctx context.Context, c licensingv1connect.LicensingServiceClient) error {
		_, err := c.GetLicenceOrder(ctx, withToken(&licensingv1.GetLicenceOrderRequest{Id: id}, tok))
		return err
	}
}

func createLicenceOrder(tok string) func(context.Context, licensingv1connect.LicensingServiceClient) error {
	return func(ctx context.Context, c licensingv1connect.LicensingServiceClient) error {
		_, err := c.CreateLicenceOrder(ctx, withToken(&licensingv1.CreateLicenceOrderRequest{RequirementId: "food-handler"}, tok))
		return err
	}
}

var decisionCases = []decisionCase{
	{
		name: "allowed", procedure: procListRequirements, call: listRequirements(tokenAllowed),
		outcome: "allowed", auth: "allowed", clientID: "acme-billing", forwarded: true, tokenSent: true,
	},
	{
		name: "no token", procedure: procListRequirements, call: listRequirements(""),
		code: connect.CodeUnauthenticated, outcome: "unauthenticated", auth: "unauthenticated",
	},
	{
		name: "forged token", procedure: procListRequirements, call: listRequirements(tokenForged),
		code: connect.CodeUnauthenticated, outcome: "unauthenticated", auth: "unauthenticated", tokenSent: true,
	},
	{
		name: "denied by the gate", procedure: procGetLicenceOrder, call: getLicenceOrder(tokenReader, "o-1"),
		code: connect.CodePermissionDenied, outcome: "denied", auth: "denied", clientID: "acme-reader",
		missing: []string{"LIC.READ_ORDERS"}, tokenSent: true,
	},
	{
		name: "denied by an interceptor", procedure: procCreateLicenceOrder, call: createLicenceOrder(tokenAllowed),
		code: connect.CodePermissionDenied, outcome: "denied", auth: "allowed", clientID: "acme-billing",
		missing: []string{"LIC.WRITE_ORDERS"}, tokenSent: true,
	},
	{
		name: "rate limited", procedure: procListRequirements, call: listRequirements(tokenLimited),
		code: connect.CodeResourceExhausted, outcome: "rate_limited", auth: "rate_limited", policy: rateLimitPolicy, tokenSent: true,
	},
	{
		name: "rate limited after forwarding", procedure: procListJurisdictions, call: listJurisdictions(tokenAllowed),
		code: connect.CodeResourceExhausted, outcome: "rate_limited", auth: "allowed", clientID: "acme-billing",
		policy: rateLimitPolicy, forwarded: true, tokenSent: true,
	},
	{
		name: "gateway failure", procedure: procListRequirements, call: listRequirements(tokenOutage),
		code: connect.CodeUnavailable, outcome: "error", auth: "error", failed: true, tokenSent: true,
	},
	{
		name: "backend not found", procedure: procGetLicenceOrder, call: getLicenceOrder(tokenAllowed, "missing"),
		code: connect.CodeNotFound, outcome: "allowed", auth: "allowed", clientID: "acme-billing", forwarded: true, tokenSent: true,
	},
	{
		name: "backend denies", procedure: procGetLicenceOrder, call: getLicenceOrder(tokenAllowed, "foreign"),
		code: connect.CodePermissionDenied, outcome: "allowed", auth: "allowed", clientID: "acme-billing", forwarded: true, tokenSent: true,
	},
	{
		name: "backend exhausted", procedure: procGetLicenceOrder, call: getLicenceOrder(tokenAllowed, "busy"),
		code: connect.CodeResourceExhausted, outcome: "allowed", auth: "allowed", clientID: "acme-billing", forwarded: true, tokenSent: true,
	},
}

func TestDecisions(t *testing.T) {
	t.Parallel()
	for _, tc := range decisionCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackConfig{})
			for _, p := range protocols {
				err := tc.call(t.Context(), s.client(p.opts...))
				if got := connect.CodeOf(err); (err != nil || tc.code != 0) && got != tc.code {
					t.Fatalf("%s: error %v, want code %v", p.name, err, tc.code)
				}
			}
			n := len(protocols)
			spans := s.spans.Ended()
			servers := spansOf(spans, trace.SpanKindServer, "portcullis")
			if len(servers) != n {
				t.Fatalf("%d gateway server spans, want %d", len(servers), n)
			}
			wantStatus := "OK"
			if tc.code != 0 {
				wantStatus = strings.ToUpper(tc.code.String())
			}
			for _, span := range servers {
				wantAttr(t, span, "rpc.method", rpcMethod(tc.procedure))
				wantAttr(t, span, "rpc.response.status_code", wantStatus)
				wantAttr(t, span, "portcullis.outcome", tc.outcome)
				wantAttr(t, span, "portcullis.client_id", tc.clientID)
				wantAttr(t, span, "portcullis.rate_limit.policy", tc.policy)
				if got := attrs(span)["portcullis.missing_permissions"].AsStringSlice(); !slices.Equal(got, tc.missing) {
					t.Errorf("missing permissions %q, want %q", got, tc.missing)
				}
				if failed := span.Status().Code == codes.Error; failed != tc.failed {
					t.Errorf("span status %v, want failed=%v", span.Status(), tc.failed)
				}
			}
			clients := spansOf(spans, trace.SpanKindClient, "portcullis")
			if want := map[bool]int{true: n}[tc.forwarded]; len(clients) != want {
				t.Errorf("%d forwarding spans, want %d", len(clients), want)
			}

			rm := s.collect(t)
			method := attribute.String("rpc.method", rpcMethod(tc.procedure))
			if got := sumInt(rm, "portcullis.decisions", method, attribute.String("portcullis.outcome", tc.outcome)); got != int64(n) {
				t.Errorf("portcullis.decisions{%s} = %d, want %d", tc.outcome, got, n)
			}
			if got := sumInt(rm, "portcullis.decisions"); got != int64(n) {
				t.Errorf("portcullis.decisions = %d in all, want %d", got, n)
			}
			wantLimited := map[bool]int64{true: int64(n)}[tc.outcome == "rate_limited"]
			if got := sumInt(rm, "portcullis.rate_limit.rejections", method); got != wantLimited {
				t.Errorf("portcullis.rate_limit.rejections = %d, want %d", got, wantLimited)
			}
			if got := histogramCount(rm, "portcullis.auth.duration", attribute.String("portcullis.outcome", tc.auth)); got != uint64(n) {
				t.Errorf("portcullis.auth.duration{%s} count = %d, want %d", tc.auth, got, n)
			}
			checkCallDurations(t, rm, tc, wantStatus, n)

			lines := accessLines(t, s.logs)
			gatewayLines := lines[:0]
			for _, line := range lines {
				if _, ok := line["outcome"]; ok {
					gatewayLines = append(gatewayLines, line)
				}
			}
			if len(gatewayLines) != n {
				t.Fatalf("%d access lines, want %d: %v", len(gatewayLines), n, lines)
			}
			wantLevel := map[bool]string{true: "WARN", false: "INFO"}[tc.outcome == "error"]
			wantCode := "ok"
			if tc.code != 0 {
				wantCode = tc.code.String()
			}
			var protocolsSeen []string
			for i, line := range gatewayLines {
				checkField(t, line, "level", wantLevel)
				checkField(t, line, "procedure", tc.procedure)
				checkField(t, line, "code", wantCode)
				checkField(t, line, "outcome", tc.outcome)
				checkField(t, line, "client_id", tc.clientID)
				checkField(t, line, "rate_limit_policy", tc.policy)
				checkTokenHash(t, line, tc.tokenSent)
				checkField(t, line, "trace_id", servers[i].SpanContext().TraceID().String())
				if _, ok := line["duration_ms"].(float64); !ok {
					t.Errorf("access line %v has no duration_ms", line)
				}
				var gotMissing []string
				if list, ok := line["missing_permissions"].([]any); ok {
					for _, m := range list {
						gotMissing = append(gotMissing, m.(string))
					}
				}
				if !slices.Equal(gotMissing, tc.missing) {
					t.Errorf("access line missing_permissions %v, want %v", line["missing_permissions"], tc.missing)
				}
				protocolsSeen = append(protocolsSeen, line["protocol"].(string))
			}
			slices.Sort(protocolsSeen)
			if want := []string{"connect", "grpc", "grpcweb"}; !slices.Equal(protocolsSeen, want) {
				t.Errorf("access lines' protocols %v, want %v", protocolsSeen, want)
			}
		})
	}
}

// checkField checks a string field of an access line; want "" means absent.
func checkField(t *testing.T, line map[string]any, key, want string) {
	t.Helper()
	got, ok := line[key]
	switch {
	case want == "" && ok:
		t.Errorf("access line has %s = %v, want none: %v", key, got, line)
	case want != "" && got != want:
		t.Errorf("access line has %s = %v, want %q: %v", key, got, want, line)
	}
}

// matches reports whether a data point has all the attributes.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// sumInt adds up the points of an int64 sum that have the attributes.
func sumInt(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		return -1
	}
	var total int64
	for _, dp := range sum.DataPoints {
		if matches(dp.Attributes, want) {
			total += dp.Value
		}
	}
	return total
}

// checkCallDurations checks the RPC duration histograms of a decision
// case's n calls, one per protocol: a call the gate let through counts in
// rpc.server.call.duration with otelconnect's attributes (rpc.system.name
// by protocol, rpc.method, rpc.response.status_code, and error.type on a
// failure), one refused at the gate does not; a forwarded call counts in
// rpc.client.call.duration, with the backend's server.address and
// server.port.
func checkCallDurations(t *testing.T, rm metricdata.ResourceMetrics, tc decisionCase, wantStatus string, n int) {
	t.Helper()
	method := attribute.String("rpc.method", rpcMethod(tc.procedure))
	served := map[bool]uint64{true: uint64(n)}[tc.auth == "allowed"]
	if got := histogramCount(rm, "rpc.server.call.duration"); got != served {
		t.Errorf("rpc.server.call.duration count = %d, want %d", got, served)
	}
	if served > 0 {
		for system, calls := range map[string]uint64{"connectrpc": 1, "grpc": 2} { // gRPC and gRPC-Web
			want := []attribute.KeyValue{method, attribute.String("rpc.system.name", system), attribute.String("rpc.response.status_code", wantStatus)}
			if tc.code != 0 {
				want = append(want, attribute.String("error.type", wantStatus))
			}
			if got := histogramCount(rm, "rpc.server.call.duration", want...); got != calls {
				t.Errorf("rpc.server.call.duration%v count = %d, want %d", want, got, calls)
			}
		}
		if tc.code == 0 && histogramCount(rm, "rpc.server.call.duration", attribute.String("error.type", wantStatus)) != 0 {
			t.Error("a call that succeeded has an error.type")
		}
	}
	forwarded := map[bool]uint64{true: uint64(n)}[tc.forwarded]
	if got := histogramCount(rm, "rpc.client.call.duration", method); got != forwarded {
		t.Errorf("rpc.client.call.duration count = %d, want %d", got, forwarded)
	}
	if m, ok := findMetric(rm, "rpc.client.call.duration"); ok && forwarded > 0 {
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			host, _ := dp.Attributes.Value("server.address")
			port, _ := dp.Attributes.Value("server.port")
			if host.AsString() != "127.0.0.1" || port.AsInt64() == 0 {
				t.Errorf("forwarded call recorded with server.address %q, server.port %d; want the backend's", host.AsString(), port.AsInt64())
			}
		}
		if tc.outcome == "allowed" {
			if got := histogramCount(rm, "rpc.client.call.duration", method, attribute.String("rpc.response.status_code", wantStatus)); got != forwarded {
				t.Errorf("rpc.client.call.duration{%s} count = %d, want %d", wantStatus, got, forwarded)
			}
		}
	}
}

// histogramCount counts the measurements of a histogram that have the
// attributes.
func histogramCount(rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) uint64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		return 0
	}
	var total uint64
	for _, dp := range h.DataPoints {
		if matches(dp.Attributes, want) {
			total += dp.Count
		}
	}
	return total
}

func histogramSum(rm metricdata.ResourceMetrics, name string) float64 {
	m, _ := findMetric(rm, name)
	h, _ := m.Data.(metricdata.Histogram[float64])
	var total float64
	for _, dp := range h.DataPoints {
		total += dp.Sum
	}
	return total
}

// TestGateTiming checks, with a clock that moves a millisecond at each
// reading, that a gated call's span starts when the call started, at the
// edge or else at the gate, and that a call the gate rejects has a span,
// metrics and an access line of its own.
func TestGateTiming(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		name   string
		noEdge bool
		// The clock's readings of the allowed call, at +0ms: the start at
		// the edge (with one), the gate's start and end, the interceptor's
		// finish. Then those of the denied call, but the finish.
		deniedStart, deniedEnd time.Duration
		durations              []float64
	}{
		{name: "edge", deniedStart: ms(4), deniedEnd: ms(6), durations: []float64{3, 2}},
		{name: "gate first", noEdge: true, deniedStart: ms(3), deniedEnd: ms(4), durations: []float64{2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			clock := &stepClock{now: base, step: time.Millisecond}
			s := newStack(t, stackConfig{noEdge: tc.noEdge, telOpts: []telemetry.Option{telemetry.WithClock(clock.Now)}})
			client := s.client()

			if err := listRequirements(tokenAllowed)(t.Context(), client); err != nil {
				t.Fatal(err)
			}
			err := getLicenceOrder(tokenReader, "o-1")(t.Context(), client)
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Fatalf("error %v, want permission_denied", err)
			}

			servers := spansOf(s.spans.Ended(), trace.SpanKindServer, "portcullis")
			if len(servers) != 2 {
				t.Fatalf("%d gateway spans, want 2", len(servers))
			}
			allowed, denied := servers[0], servers[1]
			if !allowed.StartTime().Equal(base) {
				t.Errorf("allowed call's span starts at %v, want the call's start %v", allowed.StartTime(), base)
			}
			if !denied.StartTime().Equal(base.Add(tc.deniedStart)) || !denied.EndTime().Equal(base.Add(tc.deniedEnd)) {
				t.Errorf("denied call's span runs %v to %v, want %v to %v", denied.StartTime(), denied.EndTime(),
					base.Add(tc.deniedStart), base.Add(tc.deniedEnd))
			}
			// The gate's span is what otelconnect would have made.
			if denied.Name() != rpcMethod(procGetLicenceOrder) || denied.SpanKind() != trace.SpanKindServer {
				t.Errorf("denied call's span %q kind %v", denied.Name(), denied.SpanKind())
			}
			wantAttr(t, denied, "rpc.system.name", "connectrpc")
			wantAttr(t, denied, "rpc.method", rpcMethod(procGetLicenceOrder))
			wantAttr(t, denied, "rpc.response.status_code", "PERMISSION_DENIED")
			wantAttr(t, denied, "error.type", "PERMISSION_DENIED")
			if denied.Status().Code != codes.Unset {
				t.Errorf("denied call's span status %v, want unset: the caller's fault", denied.Status())
			}
			for key := range attrs(allowed) {
				if _, ok := attrs(denied)[key]; !ok && !strings.HasPrefix(string(key), "server.") && key != "portcullis.tier" {
					t.Errorf("the gate's span lacks otelconnect's attribute %s", key)
				}
			}

			rm := s.collect(t)
			if got := histogramCount(rm, "portcullis.auth.duration"); got != 2 {
				t.Errorf("portcullis.auth.duration count %d, want 2", got)
			}
			if got := histogramSum(rm, "portcullis.auth.duration"); got < 0.0019 || got > 0.0021 {
				t.Errorf("portcullis.auth.duration sum %v s, want 0.002 s", got)
			}
			lines := accessLines(t, s.logs)
			var durations []float64
			for _, line := range lines {
				d, _ := line["duration_ms"].(float64)
				durations = append(durations, d)
			}
			if !slices.Equal(durations, tc.durations) {
				t.Errorf("access lines' durations %v ms, want %v: %v", durations, tc.durations, lines)
			}
		})
	}
}

func TestRemoteParent(t *testing.T) {
	t.Parallel()
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
		SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	for _, tc := range []struct {
		name  string
		trust bool
		call  func(context.Context, licensingv1connect.LicensingServiceClient, string) error
	}{
		{"untrusted allowed", false, callWithTraceparent(tokenAllowed)},
		{"untrusted gate-rejected", false, callWithTraceparent("")},
		{"trusted allowed", true, callWithTraceparent(tokenAllowed)},
		{"trusted gate-rejected", true, callWithTraceparent("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg stackConfig
			if tc.trust {
				cfg.telOpts = []telemetry.Option{telemetry.WithTrustRemote()}
			}
			s := newStack(t, cfg)
			_ = tc.call(t.Context(), s.client(), traceparent)
			span := oneSpan(t, s.spans.Ended(), trace.SpanKindServer, "portcullis")
			if tc.trust {
				if span.Parent().SpanID() != caller.SpanID() || span.SpanContext().TraceID() != caller.TraceID() {
					t.Errorf("span %v with parent %v, want a child of the caller's %v", span.SpanContext(), span.Parent(), caller)
				}
				return
			}
			if span.Parent().IsValid() || span.SpanContext().TraceID() == caller.TraceID() {
				t.Errorf("span %v with parent %v, want a new root", span.SpanContext(), span.Parent())
			}
			links := span.Links()
			if len(links) != 1 || !links[0].SpanContext.Equal(caller) {
				t.Errorf("links %v, want one to the caller's span %v", links, caller)
			}
		})
	}
}

func callWithTraceparent(tok string) func(context.Context, licensingv1connect.LicensingServiceClient, string) error {
	return func(ctx context.Context, c licensingv1connect.LicensingServiceClient, traceparent string) error {
		req := withToken(&licensingv1.ListRequirementsRequest{}, tok)
		req.Header().Set("Traceparent", traceparent)
		_, err := c.ListRequirements(ctx, req)
		return err
	}
}

func TestStreamInFlight(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	s := newStack(t, stackConfig{hold: hold})
	method := attribute.String("rpc.method", rpcMethod(procWatchLicenceOrders))
	for _, p := range protocols {
		stream, err := s.client(p.opts...).WatchLicenceOrders(t.Context(),
			withToken(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "b-1"}, tokenAllowed))
		if err != nil {
			t.Fatal(err)
		}
		if !stream.Receive() {
			t.Fatalf("%s: no first message: %v", p.name, stream.Err())
		}
		if got := sumInt(s.collect(t), "portcullis.calls.active", method); got != 1 {
			t.Errorf("%s: %d calls active while streaming, want 1", p.name, got)
		}
		hold <- struct{}{}
		received := 1
		for stream.Receive() {
			received++
		}
		if err := stream.Err(); err != nil || received != 2 {
			t.Fatalf("%s: %d messages, error %v; want 2, none", p.name, received, err)
		}
		_ = stream.Close()
		if got := sumInt(s.collect(t), "portcullis.calls.active", method); got != 0 {
			t.Errorf("%s: %d calls active after the stream, want 0", p.name, got)
		}
	}
	rm := s.collect(t)
	n := len(protocols)
	if got := sumInt(rm, "portcullis.decisions", method, attribute.String("portcullis.outcome", "allowed")); got != int64(n) {
		t.Errorf("%d streams allowed, want %d", got, n)
	}
	spans := s.spans.Ended()
	gw := spansOf(spans, trace.SpanKindServer, "portcullis")
	fw := spansOf(spans, trace.SpanKindClient, "portcullis")
	be := spansOf(spans, trace.SpanKindServer, "licensing")
	if len(gw) != n || len(fw) != n || len(be) != n {
		t.Fatalf("%d gateway, %d forwarding, %d backend spans; want %d of each", len(gw), len(fw), len(be), n)
	}
	for i := range gw {
		wantAttr(t, gw[i], "portcullis.outcome", "allowed")
		if fw[i].Parent().SpanID() != gw[i].SpanContext().SpanID() || be[i].Parent().SpanID() != fw[i].SpanContext().SpanID() {
			t.Errorf("stream %d: spans not linked gateway → forwarding → backend", i)
		}
	}
}

// TestNoTokenInOutput makes calls of every outcome in every protocol with
// recognizable tokens, then looks for them in everything recorded.
func TestNoTokenInOutput(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	for _, p := range protocols {
		for _, tc := range decisionCases {
			_ = tc.call(t.Context(), s.client(p.opts...))
		}
	}
	logs := s.logs.String()
	spans := s.spans.Ended()
	if len(spans) < len(protocols)*len(decisionCases) || !strings.Contains(logs, `"token_hash":"`) {
		t.Fatalf("%d spans and logs without token hashes: the check below would prove nothing", len(spans))
	}
	if leak := findTokens(logs, spans); leak != "" {
		t.Errorf("token leaked: %s", leak)
	}
	rm := s.collect(t)
	var metricText strings.Builder
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var sets []attribute.Set
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					sets = append(sets, dp.Attributes)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					sets = append(sets, dp.Attributes)
				}
			}
			for _, set := range sets {
				metricText.WriteString(set.Encoded(attribute.DefaultEncoder()))
				if _, ok := set.Value("portcullis.client_id"); ok {
					t.Errorf("metric %s has a client id: %v", m.Name, set)
				}
			}
		}
	}
	if leak := findTokens(metricText.String(), nil); leak != "" {
		t.Errorf("token leaked into metrics: %s", leak)
	}
	if metricText.Len() == 0 {
		t.Fatal("no metric attributes recorded")
	}
}

func TestNilTelemetry(t *testing.T) {
	t.Parallel()
	var tel *telemetry.Telemetry
	called := false
	next := connect.UnaryFunc(func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		called = true
		return nil, errors.New("next")
	})
	for _, ic := range []connect.Interceptor{tel.ServerInterceptor(), tel.ClientInterceptor(), tel.ServiceInterceptor()} {
		called = false
		_, err := ic.WrapUnary(next)(t.Context(), connect.NewRequest(&licensingv1.ListRequirementsRequest{}))
		if !called || err == nil || err.Error() != "next" {
			t.Errorf("nil telemetry's interceptor did not pass the call through: %v", err)
		}
	}
	if tel.WrapGate(nil) != nil {
		t.Error("nil telemetry wrapped a nil gate")
	}
	if h := http.NotFoundHandler(); tel.WrapHandler(h) == nil {
		t.Error("nil telemetry dropped the handler")
	}
	tel.RecordAuth(t.Context(), time.Millisecond, nil)
	tel.RecordJWKSRefresh(t.Context(), "https://issuer.example", nil, 2)
	tel.RecordLimiterError(t.Context())
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}

	// A gateway without telemetry still serves.
	_, h := licensingv1connect.NewLicensingServiceHandler(&backend{},
		connect.WithRequestGate(tel.WrapGate(testGate)),
		connect.WithInterceptors(tel.ServerInterceptor()))
	srv := h2ctest.Start(t, tel.WrapHandler(h))
	c := licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), srv.URL, connect.WithInterceptors(tel.ClientInterceptor()))
	if err := listRequirements(tokenAllowed)(t.Context(), c); err != nil {
		t.Error(err)
	}
	if err := getLicenceOrder(tokenReader, "o-1")(t.Context(), c); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("error %v, want permission_denied", err)
	}
}
