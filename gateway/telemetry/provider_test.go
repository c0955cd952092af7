package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/telemetry"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// clearOTelEnv unsets the OTEL_* variables the tests' environment may
// have, so that each test sees only its own.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, key := range []string{
		"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(key, "")
	}
}

// TestExporterDefaults checks what the environment turns on. It sets
// environment variables, so it does not run in parallel.
func TestExporterDefaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		writer  bool
		tracing bool
	}{
		{name: "nothing set: traces off", tracing: false},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, tracing: false},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, tracing: true},
		{name: "OTLP endpoint means otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_METRICS_EXPORTER": "none"}, tracing: true},
		{name: "OTLP traces endpoint means otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, tracing: true},
		{name: "span writer", writer: true, tracing: true},
		{name: "SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, tracing: false},
		{name: "sampler off", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, writer: true, tracing: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var spans bytes.Buffer
			opts := []telemetry.Option{telemetry.WithLogger(slog.New(slog.DiscardHandler))}
			if tc.writer {
				opts = append(opts, telemetry.WithSpanWriter(&spans))
			}
			tel, err := telemetry.New(t.Context(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "probe")
			if span.IsRecording() != tc.tracing {
				t.Errorf("span recording = %v, want %v", span.IsRecording(), tc.tracing)
			}
			if tc.writer {
				span.End() // the others would go to stdout or to nowhere, retrying
			}
			if err := tel.Shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if tc.writer && tc.tracing && !strings.Contains(spans.String(), "\n\t\"Name\": \"probe\"") {
				t.Errorf("span writer got %q, want the probe span indented", spans.String())
			}
		})
	}
}

func TestSampleRatio(t *testing.T) {
	clearOTelEnv(t)
	for _, tc := range []struct {
		ratio float64
		want  bool
	}{{0, false}, {1, true}} {
		tel, err := telemetry.New(t.Context(), telemetry.WithSpanWriter(io.Discard), telemetry.WithSampleRatio(tc.ratio))
		if err != nil {
			t.Fatal(err)
		}
		_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "probe")
		if span.IsRecording() != tc.want {
			t.Errorf("ratio %v: recording = %v, want %v", tc.ratio, span.IsRecording(), tc.want)
		}
		span.End()
		_ = tel.Shutdown(t.Context())
	}
}

// TestMetricsHandler scrapes /metrics over HTTP after calls through a
// gateway whose telemetry New built from an empty environment.
func TestMetricsHandler(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "portcullis-test")
	tel, err := telemetry.New(t.Context(), telemetry.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	s := newStack(t, stackConfig{tel: tel})
	for _, call := range []func(context.Context, licensingClient) error{
		listRequirements(tokenAllowed), listRequirements(tokenAllowed),
		getLicenceOrder(tokenReader, "o-1"), listRequirements(tokenLimited),
	} {
		_ = call(t.Context(), s.client(connect.WithGRPC()))
	}
	tel.RecordJWKSRefresh(t.Context(), "https://issuer.example", nil, 3)
	tel.RecordJWKSRefresh(t.Context(), "https://issuer.example", errors.New("connection refused"), 0)
	tel.RecordLimiterError(t.Context())

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	admin := h2ctest.Start(t, mux)
	res, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	list := rpcMethod(procListRequirements)
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"portcullis_decisions_total", map[string]string{"rpc_method": list, "portcullis_outcome": "allowed"}, 2},
		{"portcullis_decisions_total", map[string]string{"rpc_method": rpcMethod(procGetLicenceOrder), "portcullis_outcome": "denied"}, 1},
		{"portcullis_decisions_total", map[string]string{"rpc_method": list, "portcullis_outcome": "rate_limited"}, 1},
		{"portcullis_rate_limit_rejections_total", map[string]string{"rpc_method": list}, 1},
		{"portcullis_calls_active", map[string]string{"rpc_method": list}, 0},
		{"portcullis_auth_duration_seconds", map[string]string{"portcullis_outcome": "allowed"}, 2},
		{"portcullis_jwks_keys", map[string]string{"portcullis_issuer": "https://issuer.example"}, 3},
		{"portcullis_jwks_refreshes_total", map[string]string{"portcullis_issuer": "https://issuer.example", "portcullis_result": "error"}, 1},
		{"portcullis_limiter_errors_total", nil, 1},
		{"rpc_server_call_duration_seconds", map[string]string{"rpc_method": list}, 2},
		{"rpc_client_call_duration_seconds", map[string]string{"rpc_method": list}, 2},
		{"target_info", map[string]string{"service_name": "portcullis-test"}, 1},
	} {
		if got, ok := promValue(families[tc.family], tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.family, tc.labels, got, ok, tc.want)
		}
	}
	if families["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}
	if h := families["portcullis_auth_duration_seconds"]; h != nil {
		if b := h.GetMetric()[0].GetHistogram().GetBucket(); len(b) == 0 || b[0].GetUpperBound() > 1e-6 {
			t.Errorf("auth duration's first bucket %v, want one of a microsecond", b)
		}
	}
}

// promValue is the value of the family's metric with the labels: a
// counter's or gauge's value, a histogram's count.
func promValue(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		have := make(map[string]string)
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range labels {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}
