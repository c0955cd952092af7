package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// observedStack is a gateway in front of the licensing backend whose spans
// and access lines the test reads.
type observedStack struct {
	*stack
	recorder *tracetest.SpanRecorder
	provider *sdktrace.TracerProvider
	logs     *logtest.Buffer
}

func newObservedStack(t *testing.T, extra string) *observedStack {
	t.Helper()
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "portcullis"))))
	iss := gatewaytest.Issuer(t)
	_, lic := licensing.New().Handler()
	logs := new(logtest.Buffer)
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s := startGateway(t, iss, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
`, iss.URL, issuertest.Audience, h2ctest.Serve(t, lic))+extra,
		gateway.WithLogger(logger),
		gateway.WithTelemetryOptions(telemetry.WithTracerProvider(provider)))
	return &observedStack{stack: s, recorder: recorder, provider: provider, logs: logs}
}

// serverSpans returns the ended server spans of procedure.
func (s *observedStack) serverSpans(t *testing.T, procedure string) []sdktrace.ReadOnlySpan {
	t.Helper()
	if err := s.provider.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []sdktrace.ReadOnlySpan
	for _, span := range s.recorder.Ended() {
		if span.SpanKind() == trace.SpanKindServer && "/"+span.Name() == procedure {
			out = append(out, span)
		}
	}
	return out
}

// accessLines returns the access lines of procedure, decoded.
func (s *observedStack) accessLines(t *testing.T, procedure string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["procedure"] == procedure {
			out = append(out, line)
		}
	}
	return out
}

// TestChainOrder pins the order of the decision chain in what callers and
// operators see: a call the gate refuses is still traced, logged and
// counted; a call the limiter refuses was authenticated first (its span
// and access line name the client); and the limiter refuses before the
// request body is read.
func TestChainOrder(t *testing.T) {
	t.Parallel()
	s := newObservedStack(t, `
rate_limit:
  tiers:
    one: {override: {requests: 1, period: 1h, burst: 1}}
`)
	const procedure = "/example.licensing.v1.LicensingService/ListRequirements"
	req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})

	// Refused by the gate (authentication): traced, logged, counted.
	_, err := s.licensingClient("not-a-token").ListRequirements(context.Background(), req)
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("forged token = %v, want Unauthenticated", err)
	}
	spans := s.serverSpans(t, procedure)
	if len(spans) != 1 || attr(spans[0], "portcullis.outcome") != "unauthenticated" {
		t.Fatalf("server spans of the refused call = %d (outcome %q), want 1 unauthenticated", len(spans), outcomeOf(spans))
	}
	if lines := s.accessLines(t, procedure); len(lines) != 1 || lines[0]["outcome"] != "unauthenticated" {
		t.Fatalf("access lines of the refused call = %v, want one unauthenticated", lines)
	}
	metrics := adminGet(t, s.admin+"/metrics")
	if !strings.Contains(metrics, `portcullis_outcome="unauthenticated"`) {
		t.Error("the refused call is not counted in portcullis_decisions_total")
	}

	// Refused by the limiter: authenticated first, so the refusal names
	// the client, in the span and in the access line.
	secret := s.issuer.AddClient(t, issuer.Client{ID: "once", Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "one"})
	tok := s.issuer.Token(t, "once", secret)
	client := s.licensingClient(tok)
	if _, err := client.ListRequirements(context.Background(), req); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if _, err := client.ListRequirements(context.Background(), req); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("second call = %v, want ResourceExhausted", err)
	}
	var limited sdktrace.ReadOnlySpan
	for _, span := range s.serverSpans(t, procedure) {
		if attr(span, "portcullis.outcome") == "rate_limited" {
			limited = span
		}
	}
	if limited == nil {
		t.Fatalf("no rate_limited server span among %s", outcomeOf(s.serverSpans(t, procedure)))
	}
	if got := attr(limited, "portcullis.client_id"); got != "once" {
		t.Errorf("the rate-limited call's span names client %q, want \"once\": it was not authenticated first", got)
	}
	found := false
	for _, line := range s.accessLines(t, procedure) {
		if line["outcome"] == "rate_limited" {
			found = true
			if line["client_id"] != "once" {
				t.Errorf("the rate-limited call's access line names client %v, want \"once\"", line["client_id"])
			}
		}
	}
	if !found {
		t.Error("no access line for the rate-limited call")
	}

	// The limiter decides in the gate: over the budget, a call whose body
	// never arrives is refused at once.
	body, never := io.Pipe()
	defer never.Close()
	hreq, err := http.NewRequest(http.MethodPost, s.url+procedure, body)
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+tok)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := (&http.Client{Transport: h2ctest.Transport()}).Do(hreq.WithContext(ctx))
	if err != nil {
		t.Fatalf("a call over the budget with a body that never comes: %v (the limiter waited for the body)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a call over the budget with a body that never comes: %d, want 429", resp.StatusCode)
	}
}

func outcomeOf(spans []sdktrace.ReadOnlySpan) string {
	var out []string
	for _, s := range spans {
		out = append(out, attr(s, "portcullis.outcome"))
	}
	return strings.Join(out, ",")
}

func adminGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
