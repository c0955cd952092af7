package telemetry

import (
	"context"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newTracerProvider builds the SDK TracerProvider the environment asks
// for, or returns nil when no span would ever be exported: then the caller
// uses a no-op provider, which costs a call nothing.
func newTracerProvider(ctx context.Context, cfg *config, res *resource.Resource) (*sdktrace.TracerProvider, error) {
	var tpOpts []sdktrace.TracerProviderOption
	if cfg.spanWriter != nil {
		console, err := stdouttrace.New(stdouttrace.WithWriter(cfg.spanWriter), stdouttrace.WithPrettyPrint())
		if err != nil {
			return nil, err
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(console))
	}
	var opts []autoexport.SpanOption
	if !otlpConfigured("TRACES") {
		// autoexport falls back to OTLP, which would send every span to
		// localhost:4318 where a new user has nothing listening.
		opts = append(opts, autoexport.WithFallbackSpanExporter(
			func(context.Context) (sdktrace.SpanExporter, error) { return nil, nil },
		))
	}
	exporter, err := autoexport.NewSpanExporter(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if exporter != nil && !autoexport.IsNoneSpanExporter(exporter) {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exporter))
	}
	if len(tpOpts) == 0 {
		return nil, nil
	}
	tpOpts = append(tpOpts, sdktrace.WithResource(res))
	if cfg.sampler != nil {
		tpOpts = append(tpOpts, sdktrace.WithSampler(cfg.sampler))
	}
	return sdktrace.NewTracerProvider(tpOpts...), nil
}

// newMeterProvider builds the SDK MeterProvider: always read by the
// Prometheus exporter registered on reg, and pushed to the exporter
// OTEL_METRICS_EXPORTER names, if any.
func newMeterProvider(ctx context.Context, res *resource.Resource, reg prometheus.Registerer) (*sdkmetric.MeterProvider, error) {
	prom, err := promexporter.New(
		promexporter.WithRegisterer(reg),
		promexporter.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, err
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithReader(prom)}
	var opts []autoexport.MetricOption
	if !otlpConfigured("METRICS") {
		// As for traces: Prometheus serves the metrics already.
		opts = append(opts, autoexport.WithFallbackMetricReader(
			func(context.Context) (sdkmetric.Reader, error) { return nil, nil },
		))
	}
	reader, err := autoexport.NewMetricReader(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if reader != nil && !autoexport.IsNoneMetricReader(reader) {
		mpOpts = append(mpOpts, sdkmetric.WithReader(reader))
	}
	mpOpts = append(mpOpts, sdkmetric.WithResource(res))
	return sdkmetric.NewMeterProvider(mpOpts...), nil
}

// newResource describes the process: the configured service name and
// version, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, which win.
func newResource(ctx context.Context, cfg *config) (*resource.Resource, error) {
	attrs := append(make([]attribute.KeyValue, 0, 2), semconv.ServiceName(cfg.serviceName))
	if cfg.serviceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.serviceVersion))
	}
	return resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
}

// otlpConfigured reports whether the environment names an OTLP endpoint
// for the signal ("TRACES" or "METRICS"): then a user who sets no
// exporter gets OTLP, as the specification says.
func otlpConfigured(signal string) bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// sdkDisabled reports whether OTEL_SDK_DISABLED turns the SDK off.
func sdkDisabled() bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true")
}
