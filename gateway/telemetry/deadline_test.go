package telemetry_test

import (
	"encoding/binary"
	"net/http"
	"strconv"
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
)

// grpcFrame is a message in the gRPC envelope: a flag byte, the length,
// the bytes.
func grpcFrame(t testing.TB, msg proto.Message) []byte {
	t.Helper()
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
	return append(frame, body...)
}

// rawGRPC posts a gRPC call by hand, for headers connect-go's client never
// sends, and returns the response with its body read, so that its
// trailers are in.
func rawGRPC(t testing.TB, s *stack, procedure string, header http.Header, body []byte) *http.Response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}}
	for k, v := range header {
		h[k] = v
	}
	return rawCall(t, s, http.MethodPost, procedure, h, body)
}

// grpcStatus is the code a gRPC response ended with, from its trailers or,
// for a trailers-only response, its headers.
func grpcStatus(t testing.TB, res *http.Response) connect.Code {
	t.Helper()
	v := res.Trailer.Get("Grpc-Status")
	if v == "" {
		v = res.Header.Get("Grpc-Status")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("HTTP %d with grpc-status %q", res.StatusCode, v)
	}
	return connect.Code(n)
}

// TestDeadlineExceededCode sends a deadline that has passed when the call
// reaches the handler: the client gets DeadlineExceeded, and so says
// everything the gateway records.
func TestDeadlineExceededCode(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	res := rawGRPC(t, s, procListRequirements, http.Header{
		"Authorization": {"Bearer " + tokenAllowed},
		"Grpc-Timeout":  {"1n"},
	}, grpcFrame(t, &licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA"}))
	if got := grpcStatus(t, res); got != connect.CodeDeadlineExceeded {
		t.Fatalf("client got %v, want deadline_exceeded", got)
	}
	lines := accessLines(t, s.logs)
	if len(lines) != 1 {
		t.Fatalf("%d access lines, want 1: %v", len(lines), lines)
	}
	checkField(t, lines[0], "code", "deadline_exceeded")
	checkField(t, lines[0], "outcome", "error")
	span := oneSpan(t, s.spans.Ended(), oteltrace.SpanKindServer, "portcullis")
	wantAttr(t, span, "rpc.response.status_code", "DEADLINE_EXCEEDED")
	if got := sumInt(s.collect(t), "portcullis.decisions", attribute.String("portcullis.outcome", "error")); got != 1 {
		t.Errorf("portcullis.decisions{error} = %d, want 1", got)
	}
}
