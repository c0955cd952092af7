package telemetry_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"
)

// benchTelemetry is the telemetry of a benchmark. Off is a nil Telemetry.
// On samples every span and batches it to an exporter that drops it,
// aggregates the metrics and formats the access lines as JSON before
// discarding them. Untraced is on with a no-op tracer: what a gateway
// costs with no OTEL_* variable set.
func benchTelemetry(b *testing.B, mode string) *telemetry.Telemetry {
	b.Helper()
	var tp trace.TracerProvider
	switch mode {
	case "off":
		return nil
	case "untraced":
		tp = tracenoop.NewTracerProvider()
	default:
		sdk := sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()),
		)
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel, err := telemetry.New(context.Background(),
		telemetry.WithTracerProvider(tp),
		telemetry.WithMeterProvider(mp),
		telemetry.WithLogger(telemetry.NewLogger(io.Discard, slog.LevelInfo)),
	)
	if err != nil {
		b.Fatal(err)
	}
	return tel
}

var benchModes = []string{"off", "untraced", "on"}

// BenchmarkHandler serves a unary call in process: the gate, the
// interceptors and the handler, without a network.
func BenchmarkHandler(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			tel := benchTelemetry(b, mode)
			benchServe(b, benchHandler(tel))
		})
	}
}

// BenchmarkEdge is BenchmarkHandler with the handler behind
// [telemetry.Telemetry.WrapHandler], as a gateway serves it.
func BenchmarkEdge(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			tel := benchTelemetry(b, mode)
			benchServe(b, tel.WrapHandler(benchHandler(tel)))
		})
	}
}

func benchHandler(tel *telemetry.Telemetry) http.Handler {
	_, h := licensingv1connect.NewLicensingServiceHandler(&backend{},
		connect.WithRequestGate(tel.WrapGate(testGate)),
		connect.WithInterceptors(tel.ServerInterceptor()))
	return h
}

// benchServe serves ListRequirements calls in process.
func benchServe(b *testing.B, h http.Handler) {
	body, err := proto.Marshal(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, procListRequirements, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Authorization", "Bearer "+tokenAllowed)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkGateway makes a unary call over cleartext HTTP/2 to a gateway
// that forwards it to a backend over cleartext HTTP/2, the gateway's
// telemetry off or on.
func BenchmarkGateway(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			tel := benchTelemetry(b, mode)
			_, backendHandler := licensingv1connect.NewLicensingServiceHandler(&backend{})
			backendSrv := h2ctest.Start(b, backendHandler)
			gw := &gateway{backend: licensingv1connect.NewLicensingServiceClient(h2ctest.Client(b), backendSrv.URL,
				connect.WithInterceptors(tel.ClientInterceptor()))}
			_, gwHandler := licensingv1connect.NewLicensingServiceHandler(gw,
				connect.WithRequestGate(tel.WrapGate(testGate)),
				connect.WithInterceptors(tel.ServerInterceptor()))
			client := licensingv1connect.NewLicensingServiceClient(h2ctest.Client(b), h2ctest.Start(b, gwHandler).URL)
			msg := &licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.ListRequirements(b.Context(), withToken(msg, tokenAllowed)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
