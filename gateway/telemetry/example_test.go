package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// lacking is an authorizer's error naming what the caller lacks.
type lacking []string

func (l lacking) Error() string                { return "missing " + strings.Join(l, ", ") }
func (l lacking) MissingPermissions() []string { return l }

// A gate that rejects a call stops it before the interceptors, yet the
// wrapped gate still records its span and access line.
func ExampleTelemetry_WrapGate() {
	spans := tracetest.NewSpanRecorder()
	var logs bytes.Buffer
	tel, err := telemetry.New(context.Background(),
		telemetry.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
		telemetry.WithMeterProvider(metricnoop.NewMeterProvider()),
		telemetry.WithLogger(telemetry.NewLogger(&logs, slog.LevelInfo)),
	)
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(context.Background())

	deny := func(ctx context.Context, _ connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
		return nil, connect.NewError(connect.CodePermissionDenied, lacking{"LIC.READ_ORDERS"})
	}
	_, handler := licensingv1connect.NewLicensingServiceHandler(
		licensingv1connect.UnimplementedLicensingServiceHandler{},
		connect.WithRequestGate(tel.WrapGate(deny)),
		connect.WithInterceptors(tel.ServerInterceptor()),
	)
	srv := httptest.NewServer(tel.WrapHandler(handler))
	defer srv.Close()

	client := licensingv1connect.NewLicensingServiceClient(srv.Client(), srv.URL)
	_, err = client.GetLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "o-1"}))
	fmt.Println("call:", connect.CodeOf(err))

	for _, span := range spans.Ended() {
		fmt.Println("span:", span.Name())
		for _, a := range span.Attributes() {
			if strings.HasPrefix(string(a.Key), "portcullis.") {
				fmt.Printf("  %s=%s\n", a.Key, a.Value.Emit())
			}
		}
	}
	var line struct {
		Procedure string `json:"procedure"`
		Code      string `json:"code"`
		Outcome   string `json:"outcome"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		panic(err)
	}
	fmt.Println("log:", line.Procedure, line.Code, line.Outcome)
	// Output:
	// call: permission_denied
	// span: example.licensing.v1.LicensingService/GetLicenceOrder
	//   portcullis.outcome=denied
	//   portcullis.missing_permissions=["LIC.READ_ORDERS"]
	// log: /example.licensing.v1.LicensingService/GetLicenceOrder permission_denied denied
}

// Connect refuses a call with a content type it does not speak before any
// gate or interceptor runs; the edge still writes its access line.
func ExampleTelemetry_WrapHandler() {
	var logs bytes.Buffer
	tel, err := telemetry.New(context.Background(),
		telemetry.WithTracerProvider(sdktrace.NewTracerProvider()),
		telemetry.WithMeterProvider(metricnoop.NewMeterProvider()),
		telemetry.WithLogger(telemetry.NewLogger(&logs, slog.LevelInfo)),
	)
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(context.Background())

	_, handler := licensingv1connect.NewLicensingServiceHandler(
		licensingv1connect.UnimplementedLicensingServiceHandler{},
		connect.WithInterceptors(tel.ServerInterceptor()),
	)
	srv := httptest.NewServer(tel.WrapHandler(handler))
	defer srv.Close()

	res, err := http.Post(srv.URL+licensingv1connect.LicensingServiceGetLicenceOrderProcedure, "text/plain", strings.NewReader("o-1"))
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println("call:", res.Status)

	var line struct {
		Procedure  string `json:"procedure"`
		HTTPStatus int    `json:"http_status"`
		Code       string `json:"code"`
		Outcome    string `json:"outcome"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		panic(err)
	}
	fmt.Println("log:", line.Procedure, line.HTTPStatus, line.Code, line.Outcome)
	// Output:
	// call: 415 Unsupported Media Type
	// log: /example.licensing.v1.LicensingService/GetLicenceOrder 415 unknown invalid_request
}
