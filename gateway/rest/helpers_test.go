package rest_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/rest"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// exampleServices are the services the test gateway routes.
var exampleServices = []protoreflect.ServiceDescriptor{
	licensingv1.File_example_licensing_v1_licensing_proto.Services().ByName("LicensingService"),
	ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService"),
}

// h2cClient is a client speaking HTTP/2 without TLS, as gRPC needs.
var h2cClient = &http.Client{Transport: h2ctest.Transport()}

// stack is the token issuer, both example backends, and a gateway in
// front of them whose handler is behind the REST layer.
type stack struct {
	issuer  *issuertest.Issuer
	gateway *gateway.Gateway
	rest    *rest.Handler
	url     string
	logs    *logtest.Buffer // the gateway's log: its access lines
}

func newStack(t *testing.T, opts ...rest.Option) *stack {
	t.Helper()
	env := gatewaytest.Start(t)
	logs := new(logtest.Buffer)
	gw := gatewaytest.New(t, env.Config(""), gateway.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	h, err := rest.New(exampleServices, gw.Handler(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{issuer: env.Issuer, gateway: gw, rest: h, url: h2ctest.Serve(t, h), logs: logs}
}

// call sends a REST request with a bearer token (none if empty) and
// returns the response with its body read.
func call(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// decode decodes a JSON body into a map, failing the test otherwise.
func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return m
}

// get returns the value at a path of keys and indexes in decoded JSON.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}
