package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// TestTraceThroughGateway follows one call from a client through the
// gateway's forwarding to a backend, in the spans and in the access log.
func TestTraceThroughGateway(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	newProvider := func(service string) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder), sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	provider, backendProvider := newProvider("portcullis"), newProvider("licensing")
	ctx := context.Background()

	backendTel, err := telemetry.New(ctx, telemetry.WithTracerProvider(backendProvider))
	if err != nil {
		t.Fatal(err)
	}
	_, lic := licensing.New().Handler(connect.WithInterceptors(backendTel.ServiceInterceptor()))
	backend := h2ctest.Serve(t, lic)

	iss := gatewaytest.Issuer(t)
	logs := new(logtest.Buffer)
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s := startGateway(t, iss, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
`, iss.URL, issuertest.Audience, backend),
		gateway.WithLogger(logger),
		gateway.WithTelemetryOptions(telemetry.WithTracerProvider(provider)))
	secret := iss.AddClient(t, issuer.Client{ID: "tracer", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := iss.Token(t, "tracer", secret)
	client := s.licensingClient(tok, connect.WithGRPC())

	// The caller sends a trace context of its own: the gateway, which does
	// not trust callers' traces, starts its own and never passes the
	// caller's on.
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
	req.Header().Set("Traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	if _, err := client.ListRequirements(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err = client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("GetLicenceOrder = %v, want PermissionDenied", err)
	}
	for _, p := range []*sdktrace.TracerProvider{provider, backendProvider} {
		if err := p.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	spans := recorder.Ended()
	find := func(name string, kind trace.SpanKind, service string) sdktrace.ReadOnlySpan {
		t.Helper()
		for _, s := range spans {
			if s.Name() == name && s.SpanKind() == kind && s.Resource() != nil && hasServiceName(s, service) {
				return s
			}
		}
		t.Fatalf("no %v span %q of %s among %d spans", kind, name, service, len(spans))
		return nil
	}
	const allowed = "example.licensing.v1.LicensingService/ListRequirements"
	gwServer := find(allowed, trace.SpanKindServer, "portcullis")
	gwClient := find(allowed, trace.SpanKindClient, "portcullis")
	beServer := find(allowed, trace.SpanKindServer, "licensing")
	if gwClient.Parent().SpanID() != gwServer.SpanContext().SpanID() {
		t.Error("the gateway's client span is not a child of its server span")
	}
	if beServer.Parent().SpanID() != gwClient.SpanContext().SpanID() {
		t.Error("the backend's server span is not a child of the gateway's client span")
	}
	if id := gwServer.SpanContext().TraceID(); gwClient.SpanContext().TraceID() != id || beServer.SpanContext().TraceID() != id {
		t.Error("the three spans are not in one trace")
	}
	if gwServer.SpanContext().TraceID().String() == callerTrace || beServer.SpanContext().TraceID().String() == callerTrace {
		t.Error("the caller's trace id reached the gateway's or the backend's spans")
	}
	if got := attr(gwServer, "portcullis.outcome"); got != "allowed" {
		t.Errorf("allowed call's outcome = %q", got)
	}
	if got := attr(gwServer, "portcullis.client_id"); got != "tracer" {
		t.Errorf("allowed call's client id = %q", got)
	}

	denied := find("example.licensing.v1.LicensingService/GetLicenceOrder", trace.SpanKindServer, "portcullis")
	if got := attr(denied, "portcullis.outcome"); got != "denied" {
		t.Errorf("denied call's outcome = %q", got)
	}
	if got := attr(denied, "portcullis.missing_permissions"); got != `["LIC.READ_ORDERS"]` {
		t.Errorf("denied call's missing permissions = %q", got)
	}

	// The token is nowhere: not in any span, not in the access log.
	secretPart := tok[8:]
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), secretPart[:16]) {
				t.Errorf("span %q attribute %s holds the token", s.Name(), kv.Key)
			}
		}
	}
	if strings.Contains(logs.String(), secretPart[:16]) || strings.Contains(logs.String(), secret) {
		t.Error("the access log holds the token or the client secret")
	}
	if !strings.Contains(logs.String(), `"procedure":"/example.licensing.v1.LicensingService/GetLicenceOrder"`) {
		t.Errorf("no access line for the denied call:\n%s", logs.String())
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func hasServiceName(s sdktrace.ReadOnlySpan, name string) bool {
	v, ok := s.Resource().Set().Value(attribute.Key("service.name"))
	return ok && v.AsString() == name
}

// TestAccessLogSwitch turns the access log off: calls that end well leave
// no line; what the gateway itself fails to do is still logged.
func TestAccessLogSwitch(t *testing.T) {
	t.Parallel()
	logs := new(logtest.Buffer)
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s := newStack(t, "telemetry: {access_log: false}\n", gateway.WithLogger(logger))
	secret := s.issuer.AddClient(t, issuer.Client{ID: "quiet", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	client := s.licensingClient(s.issuer.Token(t, "quiet", secret))
	if _, err := client.ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("GetLicenceOrder = %v", err)
	}
	if strings.Contains(logs.String(), `"procedure"`) {
		t.Errorf("access lines written with the access log off:\n%s", logs.String())
	}
}

// TestSampleRatioZero: with trace_sample_ratio 0 and callers' traces not
// trusted, no span can be recorded, so none is built: nothing is written
// and the backend gets no trace context, not even an unsampled one. Told to
// trust callers, the gateway follows a caller's sampled trace even at 0.
func TestSampleRatioZero(t *testing.T) {
	t.Parallel()
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, trust := range []bool{false, true} {
		t.Run(fmt.Sprintf("trust remote %v", trust), func(t *testing.T) {
			t.Parallel()
			_, lic := licensing.New().Handler()
			var mu sync.Mutex
			var seen []string
			backend := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/ListRequirements") { // not the health probe
					mu.Lock()
					seen = append(seen, r.Header.Get("Traceparent"))
					mu.Unlock()
				}
				lic.ServeHTTP(w, r)
			}))
			cat, err := catalog.New(protoregistry.GlobalFiles)
			if err != nil {
				t.Fatal(err)
			}
			iss := issuertest.Start(t, cat)
			spans := new(logtest.Buffer)
			telOpts := []telemetry.Option{telemetry.WithSpanWriter(spans)}
			if trust {
				telOpts = append(telOpts, telemetry.WithTrustRemote())
			}
			s := startGateway(t, iss, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
telemetry: {trace_sample_ratio: 0}
`, iss.URL, issuertest.Audience, backend), gateway.WithTelemetryOptions(telOpts...))
			secret := iss.AddClient(t, issuer.Client{ID: "unsampled", Grants: []string{"LIC.READ_REQUIREMENTS"}})
			client := s.licensingClient(iss.Token(t, "unsampled", secret), connect.WithGRPC())
			req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
			req.Header().Set("Traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
			if _, err := client.ListRequirements(t.Context(), req); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			if len(got) != 1 {
				t.Fatalf("the backend got %d calls, want 1", len(got))
			}
			if !trust {
				if got[0] != "" {
					t.Errorf("the backend got traceparent %q, want none", got[0])
				}
				if spans.String() != "" {
					t.Errorf("spans written at ratio 0:\n%s", spans.String())
				}
				return
			}
			if !strings.Contains(got[0], callerTrace) || !strings.HasSuffix(got[0], "-01") {
				t.Errorf("the backend got traceparent %q, want the caller's sampled trace", got[0])
			}
			if !strings.Contains(spans.String(), callerTrace) {
				t.Error("no span of the caller's sampled trace was written")
			}
		})
	}
}
