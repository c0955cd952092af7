package telemetry_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/telemetry"
)

// TestInvalidOptions checks that New reports every option given a value it
// cannot use, instead of ignoring it.
func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  telemetry.Option
		want string
	}{
		{"nil option", nil, "nil option"},
		{"empty service name", telemetry.WithServiceName(""), "service name"},
		{"nil tracer provider", telemetry.WithTracerProvider(nil), "tracer provider"},
		{"nil meter provider", telemetry.WithMeterProvider(nil), "meter provider"},
		{"nil logger", telemetry.WithLogger(nil), "logger"},
		{"nil span writer", telemetry.WithSpanWriter(nil), "span writer"},
		{"nil clock", telemetry.WithClock(nil), "clock"},
		{"negative sample ratio", telemetry.WithSampleRatio(-0.1), "sample ratio"},
		{"sample ratio above 1", telemetry.WithSampleRatio(1.5), "sample ratio"},
		{"NaN sample ratio", telemetry.WithSampleRatio(math.NaN()), "sample ratio"},
		{"nil token hash key", telemetry.WithTokenHashKey(nil), "token hash key"},
		{"short token hash key", telemetry.WithTokenHashKey([]byte("0123456789abcde")), "token hash key"},
		{"procedure without a method", telemetry.WithProcedures("/example.v1.Service"), "procedure"},
		{"procedure without a slash", telemetry.WithProcedures("example.v1.Service/Method"), "procedure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tel, err := telemetry.New(context.Background(), tc.opt)
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatal("New accepted the option")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one naming the %s", err, tc.want)
			}
		})
	}
}

// TestValidOptions checks the edges of what the options accept.
func TestValidOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]telemetry.Option{
		{telemetry.WithSampleRatio(0)},
		{telemetry.WithSampleRatio(1)},
		{telemetry.WithTokenHashKey([]byte("0123456789abcdef"))},
		{telemetry.WithProcedures("/example.v1.Service/Method")},
		{telemetry.WithClock(time.Now), telemetry.WithServiceName("licensing"), telemetry.WithServiceVersion("")},
	} {
		tel, err := telemetry.New(context.Background(), opts...)
		if err != nil {
			t.Errorf("New: %v", err)
			continue
		}
		_ = tel.Shutdown(context.Background())
	}
}
