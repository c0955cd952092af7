package rest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/portcullis/portcullis/gateway/rest"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/services/issuer"
)

// seen is what the handler behind the REST layer received.
type seen struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
	rest                   bool
}

// rawEcho records each request as it arrives and answers with its body.
type rawEcho struct {
	mu   sync.Mutex
	last seen
}

func (e *rawEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, isREST := rest.FromContext(r.Context())
	e.mu.Lock()
	e.last = seen{method: r.Method, path: r.URL.Path, rawQuery: r.URL.RawQuery, header: r.Header.Clone(), body: body, rest: isREST}
	e.mu.Unlock()
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	_, _ = w.Write(body)
}

// TestRPCsPassUntouched: RPCs in every protocol reach the handler behind
// the REST layer byte for byte, unknown fields and all, and so do their
// responses.
func TestRPCsPassUntouched(t *testing.T) {
	t.Parallel()
	// GetLicenceOrderRequest{id: "lo-0001"} and two fields no descriptor knows.
	payload := protowire.AppendTag(nil, 1, protowire.BytesType)
	payload = protowire.AppendString(payload, "lo-0001")
	payload = protowire.AppendTag(payload, 99, protowire.VarintType)
	payload = protowire.AppendVarint(payload, 12345)
	payload = protowire.AppendTag(payload, 100, protowire.BytesType)
	payload = protowire.AppendBytes(payload, []byte{0xff, 0x00, 0xfe})
	enveloped := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(payload)))
	enveloped = append(enveloped, payload...)
	jsonBody := []byte(`{ "id": "lo-0001",  "unknownField": {"a": [1, 2]} }`)

	echo := &rawEcho{}
	h, err := rest.New(exampleServices, echo)
	if err != nil {
		t.Fatal(err)
	}
	base := h2ctest.Serve(t, h)
	const procedure = "/example.licensing.v1.LicensingService/GetLicenceOrder"
	tests := []struct {
		name, method, rawQuery string
		header                 map[string]string
		body                   []byte
	}{
		{name: "Connect, binary", method: "POST", body: payload, header: map[string]string{"Content-Type": "application/proto", "Connect-Protocol-Version": "1", "Connect-Timeout-Ms": "5000"}},
		{name: "Connect, JSON", method: "POST", body: jsonBody, header: map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}},
		{name: "Connect, JSON without the protocol header", method: "POST", body: jsonBody, header: map[string]string{"Content-Type": "application/json"}},
		{name: "Connect GET", method: "GET", rawQuery: "connect=v1&encoding=json&message=" + url.QueryEscape(string(jsonBody)), header: map[string]string{"Connect-Protocol-Version": "1"}},
		{name: "gRPC", method: "POST", body: enveloped, header: map[string]string{"Content-Type": "application/grpc", "Te": "trailers", "Grpc-Timeout": "5S"}},
		{name: "gRPC-Web", method: "POST", body: enveloped, header: map[string]string{"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base + procedure
			if tt.rawQuery != "" {
				u += "?" + tt.rawQuery
			}
			req, err := http.NewRequest(tt.method, u, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := h2cClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			echo.mu.Lock()
			last := echo.last
			echo.mu.Unlock()
			if !bytes.Equal(last.body, tt.body) {
				t.Errorf("handler received %x, want %x", last.body, tt.body)
			}
			if !bytes.Equal(got, tt.body) {
				t.Errorf("client received %x, want %x", got, tt.body)
			}
			if last.method != tt.method || last.path != procedure || last.rawQuery != tt.rawQuery {
				t.Errorf("handler received %s %s?%s", last.method, last.path, last.rawQuery)
			}
			for k, v := range tt.header {
				if got := last.header.Get(k); got != v {
					t.Errorf("handler received %s %q, want %q", k, got, v)
				}
			}
			if last.rest {
				t.Error("the RPC was taken for a REST call")
			}
		})
	}
}

// TestRPCsThroughGateway: connect-go clients in each protocol call the
// gateway through the REST layer as they would without it.
func TestRPCsThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := s.issuer.Token(t, "reader", secret)
	for name, opts := range map[string][]connect.ClientOption{
		"connect": nil, "connect json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpcweb": {connect.WithGRPCWeb()},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client := licensingv1connect.NewLicensingServiceClient(h2cClient, s.url, append(opts, connect.WithInterceptors(bearer(tok)))...)
			res, err := client.ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "retail"}))
			if err != nil {
				t.Fatalf("allowed call: %v", err)
			}
			if got := res.Msg.GetRequirements(); len(got) != 1 || got[0].GetId() != "us-ca-seller" {
				t.Errorf("requirements %v", got)
			}
			_, err = client.GetLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("denied call = %v, want PermissionDenied", err)
			}
		})
	}
}

// bearer sets the token on every call.
func bearer(tok string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	}
}
