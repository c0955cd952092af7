package telemetry_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/portcullis/portcullis/gateway/telemetry"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
)

// Tokens shaped like JWTs. Each is recognizable: no part of one may
// appear in any span, metric or log line.
const (
	tokenAllowed = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJjbGllbnRfaWQiOiJhY21lLWJpbGxpbmcifQ.QWxsb3dlZC1TRUNSRVQtc2lnbmF0dXJl"
	tokenReader  = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJjbGllbnRfaWQiOiJhY21lLXJlYWRlciJ9.UmVhZGVyLVNFQ1JFVC1zaWduYXR1cmU"
	tokenLimited = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJjbGllbnRfaWQiOiJhY21lLWJ1cnN0In0.TGltaXRlZC1TRUNSRVQtc2lnbmF0dXJl"
	tokenOutage  = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsyIn0.eyJjbGllbnRfaWQiOiJhY21lLW91dGFnZSJ9.T3V0YWdlLVNFQ1JFVC1zaWduYXR1cmU"
	tokenForged  = "eyJhbGciOiJub25lIn0.eyJjbGllbnRfaWQiOiJtYWxsb3J5In0.Rm9yZ2VkLVNFQ1JFVC1zaWduYXR1cmU"
)

var testTokens = []string{tokenAllowed, tokenReader, tokenLimited, tokenOutage, tokenForged}

const (
	procListJurisdictions  = licensingv1connect.LicensingServiceListJurisdictionsProcedure
	procListRequirements   = licensingv1connect.LicensingServiceListRequirementsProcedure
	procGetLicenceOrder    = licensingv1connect.LicensingServiceGetLicenceOrderProcedure
	procCreateLicenceOrder = licensingv1connect.LicensingServiceCreateLicenceOrderProcedure
	procWatchLicenceOrders = licensingv1connect.LicensingServiceWatchLicenceOrdersProcedure
	rateLimitPolicy        = `"pro";q=100;w=60`
)

// runOutput receives every log line and error any test writes, so that
// TestMain can check the whole run for tokens.
var (
	runOutput    logtest.Buffer
	runRecorders struct {
		sync.Mutex
		all []*tracetest.SpanRecorder
	}
)

func TestMain(m *testing.M) {
	slog.SetDefault(telemetry.NewLogger(&runOutput, slog.LevelDebug))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		fmt.Fprintln(&runOutput, "otel error:", err)
	}))
	code := m.Run()
	if code == 0 {
		if leak := findTokens(runOutput.String(), allRecordedSpans()); leak != "" {
			fmt.Fprintln(os.Stderr, "a token leaked during the run:", leak)
			code = 1
		}
	}
	os.Exit(code)
}

func allRecordedSpans() []sdktrace.ReadOnlySpan {
	runRecorders.Lock()
	defer runRecorders.Unlock()
	var spans []sdktrace.ReadOnlySpan
	for _, r := range runRecorders.all {
		spans = append(spans, r.Ended()...)
	}
	return spans
}

// findTokens describes where any 8 characters of a test token appear in
// logs or spans, or returns "".
func findTokens(logs string, spans []sdktrace.ReadOnlySpan) string {
	var texts []string
	texts = append(texts, logs)
	for _, s := range spans {
		texts = append(texts, spanText(s))
	}
	const window = 8
	for _, tok := range testTokens {
		for start := 0; start+window <= len(tok); start += window / 2 {
			part := tok[start : start+window]
			for _, text := range texts {
				if i := strings.Index(text, part); i >= 0 {
					return fmt.Sprintf("%q of %q in %q", part, tok, text[max(0, i-80):min(len(text), i+80)])
				}
			}
		}
	}
	return ""
}

// spanText is everything a span would export, as text.
func spanText(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	b.WriteString(s.Name())
	b.WriteString(s.Status().Description)
	kv := func(attrs []attribute.KeyValue) {
		for _, a := range attrs {
			fmt.Fprintf(&b, " %s=%s", a.Key, a.Value.Emit())
		}
	}
	kv(s.Attributes())
	for _, e := range s.Events() {
		b.WriteString(e.Name)
		kv(e.Attributes)
	}
	for _, l := range s.Links() {
		kv(l.Attributes)
	}
	kv(s.Resource().Attributes())
	return b.String()
}

// accessLines returns the access lines logged to b so far.
func accessLines(t testing.TB, b *logtest.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		if line["msg"] == "call" {
			lines = append(lines, line)
		}
	}
	return lines
}

// stepClock reads a fixed time that moves on by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = now.Add(c.step)
	return now
}

type licensingClient = licensingv1connect.LicensingServiceClient

// protocols are the client options of each protocol connect-go speaks.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// stack is a gateway in front of a backend, both instrumented, both
// recording spans into one recorder.
type stack struct {
	tel     *telemetry.Telemetry
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
	logs    *logtest.Buffer
	url     string // the gateway's
	http    *http.Client
}

type stackConfig struct {
	telOpts []telemetry.Option
	tp      *sdktrace.TracerProvider // the gateway's, when not the recorder's
	hold    chan struct{}            // the backend's streams wait on it
	tel     *telemetry.Telemetry     // the gateway's, when built by the test
	noEdge  bool                     // no WrapHandler: the gate is the first to see a call
}

// maxMessageBytes is the largest request message the test gateway reads.
const maxMessageBytes = 1 << 10

// newStack starts a backend and a gateway in front of it, with the chain
// a gateway builds: the edge, the handler with its gate, then the server
// interceptor and the others. The gateway's gate authenticates the test
// tokens and authorizes every method but CreateLicenceOrder, which an
// interceptor after the telemetry's authorizes.
func newStack(t testing.TB, cfg stackConfig) *stack {
	t.Helper()
	s := &stack{
		spans:   newRecorder(),
		metrics: sdkmetric.NewManualReader(),
		logs:    &logtest.Buffer{},
		http:    h2ctest.Client(t),
	}

	backendTel := newTelemetry(t, "licensing", s.spans, sdkmetric.NewManualReader(), io.MultiWriter(s.logs, &runOutput))
	_, backendHandler := licensingv1connect.NewLicensingServiceHandler(&backend{hold: cfg.hold},
		connect.WithInterceptors(backendTel.ServiceInterceptor()))
	backendSrv := h2ctest.Start(t, backendHandler)

	tel := cfg.tel
	if tel == nil {
		tp := cfg.tp
		if tp == nil {
			tp = newTracerProvider(t, "portcullis", s.spans)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.metrics))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		opts := append([]telemetry.Option{
			telemetry.WithTracerProvider(tp),
			telemetry.WithMeterProvider(mp),
			telemetry.WithLogger(telemetry.NewLogger(io.MultiWriter(s.logs, &runOutput), slog.LevelInfo)),
		}, cfg.telOpts...)
		var err error
		if tel, err = telemetry.New(context.Background(), opts...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	}
	s.tel = tel

	gw := &gateway{backend: licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), backendSrv.URL,
		connect.WithInterceptors(tel.ClientInterceptor()))}
	_, gwHandler := licensingv1connect.NewLicensingServiceHandler(gw,
		connect.WithRequestGate(tel.WrapGate(testGate)),
		connect.WithInterceptors(tel.ServerInterceptor(), &writeAuthorizer{}),
		connect.WithReadMaxBytes(maxMessageBytes),
	)
	if !cfg.noEdge {
		gwHandler = tel.WrapHandler(gwHandler)
	}
	s.url = h2ctest.Start(t, gwHandler).URL
	return s
}

// newRecorder returns a span recorder whose spans TestMain checks for
// tokens.
func newRecorder() *tracetest.SpanRecorder {
	r := tracetest.NewSpanRecorder()
	runRecorders.Lock()
	runRecorders.all = append(runRecorders.all, r)
	runRecorders.Unlock()
	return r
}

func newTracerProvider(t testing.TB, service string, sr *tracetest.SpanRecorder) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(sr),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func newTelemetry(t testing.TB, service string, sr *tracetest.SpanRecorder, reader sdkmetric.Reader, logs io.Writer) *telemetry.Telemetry {
	t.Helper()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel, err := telemetry.New(context.Background(),
		telemetry.WithServiceName(service),
		telemetry.WithTracerProvider(newTracerProvider(t, service, sr)),
		telemetry.WithMeterProvider(mp),
		telemetry.WithLogger(telemetry.NewLogger(logs, slog.LevelInfo)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return tel
}

// client returns a licensing client of the gateway in a protocol.
func (s *stack) client(opts ...connect.ClientOption) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(s.http, s.url, opts...)
}

// collect reads the gateway's metrics.
func (s *stack) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// withToken returns a request carrying token as its bearer token.
func withToken[T any](msg *T, tok string) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	return req
}

// principals are the callers the test tokens stand for.
var principals = map[string]*token.Principal{
	tokenAllowed: {Subject: "acme-billing", ClientID: "acme-billing", Tier: "pro", TokenID: "jti-acme-billing-1",
		Masks: map[string]uint64{"LIC": 1 | 2}},
	tokenReader: {Subject: "acme-reader", ClientID: "acme-reader", Tier: "free",
		Masks: map[string]uint64{"LIC": 1}},
	tokenLimited: {Subject: "acme-burst", ClientID: "acme-burst", Tier: "free",
		Masks: map[string]uint64{"LIC": 1 | 2}},
}

// needs are the permissions each method requires in this test, with their
// masks in the LIC domain.
var needs = map[string]map[string]uint64{
	procListRequirements:   {"LIC.READ_REQUIREMENTS": 1},
	procGetLicenceOrder:    {"LIC.READ_ORDERS": 2},
	procWatchLicenceOrders: {"LIC.READ_ORDERS": 2},
	procCreateLicenceOrder: {"LIC.READ_ORDERS": 2, "LIC.WRITE_ORDERS": 4},
}

// denial is a permission error as an authorizer returns it.
type denial struct {
	clientID string
	missing  []string
}

func (d *denial) Error() string {
	return "missing permissions: " + strings.Join(d.missing, ", ")
}

func (d *denial) MissingPermissions() []string { return d.missing }

func (d *denial) ClientID() string { return d.clientID }

func missing(p *token.Principal, procedure string) []string {
	var out []string
	for name, mask := range needs[procedure] {
		if p.Masks["LIC"]&mask != mask {
			out = append(out, name)
		}
	}
	return out
}

// testGate authenticates the test tokens, then authorizes every method
// but CreateLicenceOrder, as a gateway's token gate would.
func testGate(ctx context.Context, spec connect.Spec, _ connect.Peer, header http.Header) (context.Context, error) {
	tok, ok := strings.CutPrefix(header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || tok == "":
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no bearer token"))
	case tok == tokenOutage:
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the issuer's key set is unavailable"))
	}
	p, ok := principals[tok]
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("token signature is invalid"))
	}
	if tok == tokenLimited {
		err := connect.NewError(connect.CodeResourceExhausted, errors.New("rate limit exceeded"))
		err.Meta().Set("RateLimit-Policy", rateLimitPolicy)
		err.Meta().Set("Retry-After", "60")
		return nil, err
	}
	if spec.Procedure != procCreateLicenceOrder {
		if m := missing(p, spec.Procedure); len(m) > 0 {
			return nil, connect.NewError(connect.CodePermissionDenied, &denial{clientID: p.ClientID, missing: m})
		}
	}
	return token.NewContext(ctx, p), nil
}

// writeAuthorizer authorizes CreateLicenceOrder after the gate, from the
// principal in the context, as an interceptor would.
type writeAuthorizer struct{}

func (*writeAuthorizer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().Procedure == procCreateLicenceOrder {
			p, ok := token.FromContext(ctx)
			if !ok {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no principal"))
			}
			if m := missing(p, procCreateLicenceOrder); len(m) > 0 {
				return nil, connect.NewError(connect.CodePermissionDenied, &denial{missing: m})
			}
		}
		return next(ctx, req)
	}
}

func (*writeAuthorizer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (*writeAuthorizer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// gateway forwards every call to the backend through a client carrying
// the telemetry's client interceptor, returning the backend's errors.
type gateway struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
	backend licensingv1connect.LicensingServiceClient
}

// ListJurisdictions forwards the call, then fails it as a gateway's limit
// on a stream's messages would, after the backend was reached.
func (g *gateway) ListJurisdictions(ctx context.Context, req *connect.Request[licensingv1.ListJurisdictionsRequest]) (*connect.Response[licensingv1.ListJurisdictionsResponse], error) {
	if _, err := g.backend.ListJurisdictions(ctx, connect.NewRequest(req.Msg)); err != nil {
		return nil, err
	}
	err := connect.NewError(connect.CodeResourceExhausted, errors.New("message rate limit exceeded"))
	err.Meta().Set("RateLimit-Policy", rateLimitPolicy)
	return nil, err
}

func (g *gateway) ListRequirements(ctx context.Context, req *connect.Request[licensingv1.ListRequirementsRequest]) (*connect.Response[licensingv1.ListRequirementsResponse], error) {
	return g.backend.ListRequirements(ctx, connect.NewRequest(req.Msg))
}

func (g *gateway) GetLicenceOrder(ctx context.Context, req *connect.Request[licensingv1.GetLicenceOrderRequest]) (*connect.Response[licensingv1.GetLicenceOrderResponse], error) {
	return g.backend.GetLicenceOrder(ctx, connect.NewRequest(req.Msg))
}

func (g *gateway) CreateLicenceOrder(ctx context.Context, req *connect.Request[licensingv1.CreateLicenceOrderRequest]) (*connect.Response[licensingv1.CreateLicenceOrderResponse], error) {
	return g.backend.CreateLicenceOrder(ctx, connect.NewRequest(req.Msg))
}

func (g *gateway) WatchLicenceOrders(ctx context.Context, req *connect.Request[licensingv1.WatchLicenceOrdersRequest], out *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	in, err := g.backend.WatchLicenceOrders(ctx, connect.NewRequest(req.Msg))
	if err != nil {
		return err
	}
	defer in.Close()
	for in.Receive() {
		if err := out.Send(in.Msg()); err != nil {
			return err
		}
	}
	return in.Err()
}

// backend is the licensing service behind the gateway.
type backend struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
	hold chan struct{} // WatchLicenceOrders waits on it after its first message
}

func (*backend) ListJurisdictions(context.Context, *connect.Request[licensingv1.ListJurisdictionsRequest]) (*connect.Response[licensingv1.ListJurisdictionsResponse], error) {
	return connect.NewResponse(&licensingv1.ListJurisdictionsResponse{
		Jurisdictions: []*licensingv1.Jurisdiction{{Code: "US-CA", Name: "California"}},
	}), nil
}

func (*backend) ListRequirements(_ context.Context, req *connect.Request[licensingv1.ListRequirementsRequest]) (*connect.Response[licensingv1.ListRequirementsResponse], error) {
	return connect.NewResponse(&licensingv1.ListRequirementsResponse{
		Requirements: []*licensingv1.Requirement{{Id: "food-handler", Name: "Food handler permit"}},
	}), nil
}

func (*backend) GetLicenceOrder(_ context.Context, req *connect.Request[licensingv1.GetLicenceOrderRequest]) (*connect.Response[licensingv1.GetLicenceOrderResponse], error) {
	switch req.Msg.GetId() {
	case "missing":
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such order"))
	case "foreign":
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("the order belongs to another business"))
	case "busy":
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("backend is busy"))
	}
	return connect.NewResponse(&licensingv1.GetLicenceOrderResponse{
		Order: &licensingv1.LicenceOrder{Id: req.Msg.GetId()},
	}), nil
}

func (*backend) CreateLicenceOrder(_ context.Context, req *connect.Request[licensingv1.CreateLicenceOrderRequest]) (*connect.Response[licensingv1.CreateLicenceOrderResponse], error) {
	return connect.NewResponse(&licensingv1.CreateLicenceOrderResponse{
		Order: &licensingv1.LicenceOrder{Id: "order-1", RequirementId: req.Msg.GetRequirementId()},
	}), nil
}

func (b *backend) WatchLicenceOrders(ctx context.Context, _ *connect.Request[licensingv1.WatchLicenceOrdersRequest], out *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	for i := range 2 {
		if err := out.Send(&licensingv1.WatchLicenceOrdersResponse{}); err != nil {
			return err
		}
		if i == 0 && b.hold != nil {
			select {
			case <-b.hold:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
