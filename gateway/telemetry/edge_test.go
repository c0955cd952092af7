package telemetry_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/logtest"
)

// rawCall sends a request by hand and returns the response with its body
// read, so that its trailers are in.
func rawCall(t testing.TB, s *stack, method, procedure string, header http.Header, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+procedure, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	return res
}

// edgeCase is a call connect refuses before the interceptors see it, and
// the access line the edge must write for it.
type edgeCase struct {
	name      string
	call      func(*testing.T, *stack) (connect.Code, int) // what the client got
	procedure string                                       // in the access line
	method    string                                       // rpc.method in metrics
	protocol  string
	code      connect.Code
	status    int // HTTP status
	outcome   string
	clientID  string // the gate let the call through before it was refused
	message   string // in the line's error
}

// bigRequest is over the gateway's message size limit.
var bigRequest = &licensingv1.ListRequirementsRequest{Jurisdiction: strings.Repeat("X", maxMessageBytes+1)}

// clientCall makes a call with connect-go's client in a protocol.
func clientCall(protocol int, call func(context.Context, licensingClient) error) func(*testing.T, *stack) (connect.Code, int) {
	return func(t *testing.T, s *stack) (connect.Code, int) {
		err := call(t.Context(), s.client(protocols[protocol].opts...))
		return connect.CodeOf(err), 0
	}
}

func oversized(ctx context.Context, c licensingClient) error {
	_, err := c.ListRequirements(ctx, withToken(bigRequest, tokenAllowed))
	return err
}

// rawConnect sends a Connect call by hand; the code is the one in the
// body's JSON or, without one, what connect-go infers from the status.
func rawConnect(method, procedure, contentType string, header http.Header, body []byte) func(*testing.T, *stack) (connect.Code, int) {
	return func(t *testing.T, s *stack) (connect.Code, int) {
		h := http.Header{"Authorization": {"Bearer " + tokenAllowed}}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		for k, v := range header {
			h[k] = v
		}
		res := rawCall(t, s, method, procedure, h, body)
		return 0, res.StatusCode
	}
}

// rawGRPCCall sends a gRPC call by hand and returns its grpc-status.
func rawGRPCCall(header http.Header, body func(testing.TB) []byte) func(*testing.T, *stack) (connect.Code, int) {
	return func(t *testing.T, s *stack) (connect.Code, int) {
		h := http.Header{"Authorization": {"Bearer " + tokenAllowed}}
		for k, v := range header {
			h[k] = v
		}
		res := rawGRPC(t, s, procListRequirements, h, body(t))
		return grpcStatus(t, res), res.StatusCode
	}
}

func listRequirementsFrame(t testing.TB) []byte {
	return grpcFrame(t, &licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA"})
}

// truncatedFrame promises more bytes than it holds.
func truncatedFrame(t testing.TB) []byte {
	frame := listRequirementsFrame(t)
	binary.BigEndian.PutUint32(frame[1:], uint32(len(frame)+100))
	return frame
}

var listRequirementsMethod = rpcMethod(procListRequirements)

var edgeCases = []edgeCase{
	{
		name: "oversized, connect", call: clientCall(0, oversized),
		procedure: procListRequirements, method: listRequirementsMethod, protocol: "connect",
		code: connect.CodeResourceExhausted, status: http.StatusTooManyRequests, outcome: "invalid_request",
		clientID: "acme-billing", message: "larger than configured max",
	},
	{
		name: "oversized, grpc", call: clientCall(1, oversized),
		procedure: procListRequirements, method: listRequirementsMethod, protocol: "grpc",
		code: connect.CodeResourceExhausted, status: http.StatusOK, outcome: "invalid_request",
		clientID: "acme-billing", message: "larger than configured max",
	},
	{
		name: "oversized, grpcweb", call: clientCall(2, oversized),
		procedure: procListRequirements, method: listRequirementsMethod, protocol: "grpcweb",
		code: connect.CodeResourceExhausted, status: http.StatusOK, outcome: "invalid_request",
		clientID: "acme-billing", message: "larger than configured max",
	},
	{
		name: "unsupported content type", call: rawConnect(http.MethodPost, procListRequirements, "text/plain", nil, []byte("hello")),
		procedure: procListRequirements, method: "_OTHER", protocol: "http",
		code: connect.CodeUnknown, status: http.StatusUnsupportedMediaType, outcome: "invalid_request",
		message: "Unsupported Media Type",
	},
	{
		name: "method not allowed", call: rawConnect(http.MethodGet, procCreateLicenceOrder+"?encoding=proto&message=", "", nil, nil),
		procedure: procCreateLicenceOrder, method: "_OTHER", protocol: "connect",
		code: connect.CodeUnknown, status: http.StatusMethodNotAllowed, outcome: "invalid_request",
		message: "Method Not Allowed",
	},
	{
		name: "malformed body", call: rawConnect(http.MethodPost, procListRequirements, "application/proto", nil, []byte{0xff, 0xff, 0xff}),
		procedure: procListRequirements, method: listRequirementsMethod, protocol: "connect",
		code: connect.CodeInvalidArgument, status: http.StatusBadRequest, outcome: "invalid_request",
		clientID: "acme-billing", message: "unmarshal",
	},
	{
		name: "invalid connect-timeout-ms, stream",
		call: rawConnect(http.MethodPost, procWatchLicenceOrders, "application/connect+proto",
			http.Header{"Connect-Timeout-Ms": {"soon"}}, nil),
		procedure: procWatchLicenceOrders, method: "_OTHER", protocol: "connect",
		code: connect.CodeInvalidArgument, status: http.StatusOK, outcome: "invalid_request",
		message: "timeout",
	},
	{
		name: "invalid grpc-timeout", call: rawGRPCCall(http.Header{"Grpc-Timeout": {"1x"}}, listRequirementsFrame),
		procedure: procListRequirements, method: "_OTHER", protocol: "grpc",
		code: connect.CodeInvalidArgument, status: http.StatusOK, outcome: "invalid_request",
		message: "timeout",
	},
	{
		name: "truncated envelope", call: rawGRPCCall(nil, truncatedFrame), // connect says internal
		procedure: procListRequirements, method: listRequirementsMethod, protocol: "grpc",
		code: connect.CodeInternal, status: http.StatusOK, outcome: "error",
		clientID: "acme-billing", message: "promised",
	},
	{
		name: "unknown procedure", call: rawConnect(http.MethodPost, "/example.licensing.v1.LicensingService/Nope", "application/proto", nil, nil),
		procedure: "/example.licensing.v1.LicensingService/Nope", method: "_OTHER", protocol: "connect",
		code: connect.CodeUnimplemented, status: http.StatusNotFound, outcome: "invalid_request",
		message: "Not Found",
	},
}

// TestEdgeRecordsRefusedCalls makes calls connect refuses before the
// interceptors, in each protocol, and checks that each has one access
// line, a decision count and a span saying what the client got.
func TestEdgeRecordsRefusedCalls(t *testing.T) {
	t.Parallel()
	for _, tc := range edgeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackConfig{})
			code, status := tc.call(t, s)
			if code != 0 && code != tc.code {
				t.Fatalf("client got %v, want %v", code, tc.code)
			}
			if status != 0 && status != tc.status {
				t.Fatalf("client got HTTP %d, want %d", status, tc.status)
			}

			lines := accessLines(t, s.logs)
			if len(lines) != 1 {
				t.Fatalf("%d access lines, want 1: %v", len(lines), lines)
			}
			line := lines[0]
			wantLevel := map[bool]string{true: "WARN", false: "INFO"}[tc.outcome == "error"]
			checkField(t, line, "level", wantLevel)
			checkField(t, line, "procedure", tc.procedure)
			checkField(t, line, "protocol", tc.protocol)
			checkField(t, line, "code", tc.code.String())
			checkField(t, line, "outcome", tc.outcome)
			checkField(t, line, "client_id", tc.clientID)
			if got, _ := line["http_status"].(float64); int(got) != tc.status {
				t.Errorf("access line has http_status %v, want %d: %v", line["http_status"], tc.status, line)
			}
			if msg, _ := line["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("access line has error %q, want one with %q", msg, tc.message)
			}
			checkTokenHash(t, line, true)
			if _, ok := line["duration_ms"].(float64); !ok {
				t.Errorf("access line %v has no duration_ms", line)
			}

			rm := s.collect(t)
			method := attribute.String("rpc.method", tc.method)
			if got := sumInt(rm, "portcullis.decisions", method, attribute.String("portcullis.outcome", tc.outcome)); got != 1 {
				t.Errorf("portcullis.decisions{%s, %s} = %d, want 1", tc.method, tc.outcome, got)
			}
			if got := sumInt(rm, "portcullis.decisions"); got != 1 {
				t.Errorf("portcullis.decisions = %d in all, want 1", got)
			}

			span := oneSpan(t, s.spans.Ended(), trace.SpanKindServer, "portcullis")
			checkField(t, line, "trace_id", span.SpanContext().TraceID().String())
			wantAttr(t, span, "rpc.method", tc.method)
			wantAttr(t, span, "rpc.response.status_code", strings.ToUpper(tc.code.String()))
			wantAttr(t, span, "portcullis.outcome", tc.outcome)
			if tc.method == "_OTHER" {
				wantAttr(t, span, "rpc.method_original", tc.procedure)
			} else if span.Name() != tc.method {
				t.Errorf("span name %q, want %q", span.Name(), tc.method)
			}
			if got := attrs(span)["http.response.status_code"].AsInt64(); got != int64(tc.status) {
				t.Errorf("span's http.response.status_code %d, want %d", got, tc.status)
			}
		})
	}
}

// TestEdgeKnownProcedures checks that a procedure named with
// WithProcedures, or seen by the gate before, is counted under its method
// when a call of it is refused before the gate.
func TestEdgeKnownProcedures(t *testing.T) {
	t.Parallel()
	badType := rawConnect(http.MethodPost, procListRequirements, "text/plain", nil, nil)
	method := attribute.String("rpc.method", listRequirementsMethod)
	refused := attribute.String("portcullis.outcome", "invalid_request")

	named := newStack(t, stackConfig{telOpts: []telemetry.Option{telemetry.WithProcedures(procListRequirements)}})
	badType(t, named)
	if got := sumInt(named.collect(t), "portcullis.decisions", method, refused); got != 1 {
		t.Errorf("named procedure: portcullis.decisions{%s, invalid_request} = %d, want 1", listRequirementsMethod, got)
	}

	seen := newStack(t, stackConfig{})
	if err := listRequirements(tokenAllowed)(t.Context(), seen.client()); err != nil {
		t.Fatal(err)
	}
	badType(t, seen)
	if got := sumInt(seen.collect(t), "portcullis.decisions", method, refused); got != 1 {
		t.Errorf("seen procedure: portcullis.decisions{%s, invalid_request} = %d, want 1", listRequirementsMethod, got)
	}
}

// TestEdgePanic checks that a call whose handler panicked is recorded,
// and that the panic goes on to the server.
func TestEdgePanic(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	tel := newTelemetry(t, "portcullis", newRecorder(), sdkmetric.NewManualReader(), io.MultiWriter(&logs, &runOutput))
	h := tel.WrapHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	res, err := srv.Client().Post(srv.URL+procListRequirements, "application/proto", nil)
	if err == nil {
		res.Body.Close()
		t.Fatalf("the call got HTTP %d, want the connection closed", res.StatusCode)
	}
	lines := accessLines(t, &logs)
	if len(lines) != 1 {
		t.Fatalf("%d access lines, want 1: %v", len(lines), lines)
	}
	checkField(t, lines[0], "code", "internal")
	checkField(t, lines[0], "outcome", "error")
	checkField(t, lines[0], "level", "WARN")
	checkField(t, lines[0], "error", "the handler panicked")
}

// TestEdgeResponseWriter checks that a handler behind the edge can still
// flush and, through http.ResponseController, reach what the server's
// response writer does: full duplex, deadlines.
func TestEdgeResponseWriter(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t, "portcullis", newRecorder(), sdkmetric.NewManualReader(), io.Discard)
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"http/1.1", false}, {"h2c", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errc := make(chan error, 1)
			h := tel.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				var errs []error
				if !tc.http2 { // HTTP/2 is full duplex already
					errs = append(errs, rc.EnableFullDuplex())
				}
				errs = append(errs, rc.SetWriteDeadline(time.Now().Add(time.Minute)), rc.SetReadDeadline(time.Now().Add(time.Minute)))
				if _, ok := w.(http.Flusher); !ok {
					errs = append(errs, errors.New("the response writer is no http.Flusher"))
				}
				w.WriteHeader(http.StatusAccepted)
				_, _ = io.WriteString(w, "first")
				errs = append(errs, rc.Flush())
				errc <- errors.Join(errs...)
			}))
			var client *http.Client
			var url string
			if tc.http2 {
				url, client = h2ctest.Start(t, h).URL, h2ctest.Client(t)
			} else {
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				url, client = srv.URL, srv.Client()
			}
			res, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if err := <-errc; err != nil {
				t.Error(err)
			}
			if res.StatusCode != http.StatusAccepted || string(body) != "first" {
				t.Errorf("got HTTP %d %q, want 202 \"first\"", res.StatusCode, body)
			}
		})
	}
}

// brokenStream is a licensing service whose order stream fails after its
// first message.
type brokenStream struct {
	licensingv1connect.UnimplementedLicensingServiceHandler
}

func (brokenStream) WatchLicenceOrders(_ context.Context, _ *connect.Request[licensingv1.WatchLicenceOrdersRequest], out *connect.ServerStream[licensingv1.WatchLicenceOrdersResponse]) error {
	if err := out.Send(&licensingv1.WatchLicenceOrdersResponse{}); err != nil {
		return err
	}
	return connect.NewError(connect.CodeFailedPrecondition, errors.New("the stream broke"))
}

// TestEdgeUninstrumentedHandler serves handlers with neither a wrapped
// gate nor the server interceptor behind the edge, such as gRPC reflection:
// the edge records each of their calls with the status at the end of the
// stream, where Connect and gRPC-Web put it after messages.
func TestEdgeUninstrumentedHandler(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		svc     licensingv1connect.LicensingServiceHandler
		code    connect.Code
		message string
		outcome string
	}{
		{"ok", &backend{}, 0, "", "allowed"},
		{"broken", brokenStream{}, connect.CodeFailedPrecondition, "the stream broke", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs logtest.Buffer
			tel := newTelemetry(t, "portcullis", newRecorder(), sdkmetric.NewManualReader(), io.MultiWriter(&logs, &runOutput))
			_, h := licensingv1connect.NewLicensingServiceHandler(tc.svc)
			srv := h2ctest.Start(t, tel.WrapHandler(h))
			for _, p := range protocols {
				client := licensingv1connect.NewLicensingServiceClient(h2ctest.Client(t), srv.URL, p.opts...)
				stream, err := client.WatchLicenceOrders(t.Context(), connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				for stream.Receive() {
				}
				if got := connect.CodeOf(stream.Err()); stream.Err() != nil && got != tc.code || stream.Err() == nil && tc.code != 0 {
					t.Fatalf("%s: stream ended with %v, want code %v", p.name, stream.Err(), tc.code)
				}
				_ = stream.Close()
			}
			lines := accessLines(t, &logs)
			if len(lines) != len(protocols) {
				t.Fatalf("%d access lines, want %d: %v", len(lines), len(protocols), lines)
			}
			for i, line := range lines {
				checkField(t, line, "protocol", protocols[i].name)
				checkField(t, line, "procedure", procWatchLicenceOrders)
				checkField(t, line, "code", map[bool]string{true: "ok", false: tc.code.String()}[tc.code == 0])
				checkField(t, line, "outcome", tc.outcome)
				checkField(t, line, "error", tc.message)
			}
		})
	}
}

// TestEdgePlainHTTP checks the lines of requests that are no RPC, such as
// a CORS preflight answered in front of the handlers: what succeeded is
// ok, what failed has the code a client infers from its status.
func TestEdgePlainHTTP(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	tel := newTelemetry(t, "portcullis", newRecorder(), sdkmetric.NewManualReader(), io.MultiWriter(&logs, &runOutput))
	srv := h2ctest.Start(t, tel.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no", http.StatusForbidden)
		}
	})))
	client := h2ctest.Client(t)
	for _, method := range []string{http.MethodOptions, http.MethodDelete} {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+procListRequirements, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	lines := accessLines(t, &logs)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2: %v", len(lines), lines)
	}
	for i, want := range []struct {
		code, outcome string
		status        float64
	}{{"ok", "allowed", 204}, {"permission_denied", "invalid_request", 403}} {
		checkField(t, lines[i], "protocol", "http")
		checkField(t, lines[i], "code", want.code)
		checkField(t, lines[i], "outcome", want.outcome)
		if lines[i]["http_status"] != want.status {
			t.Errorf("access line has http_status %v, want %v", lines[i]["http_status"], want.status)
		}
	}
}
