package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// stack is an issuer, both example backends and a gateway in front of them.
type stack struct {
	issuer  *issuertest.Issuer
	gateway *gateway.Gateway
	url     string // the gateway's main listener
	admin   string // the gateway's admin listener
	yaml    string // the gateway's configuration
}

// newStack starts the issuer and backends, and a gateway whose
// configuration is extra appended to the issuer and routes.
func newStack(t testing.TB, extra string, opts ...gateway.Option) *stack {
	t.Helper()
	env := gatewaytest.Start(t)
	return startGateway(t, env.Issuer, env.Config(extra), opts...)
}

func startGateway(t testing.TB, iss *issuertest.Issuer, yaml string, opts ...gateway.Option) *stack {
	t.Helper()
	gw := gatewaytest.New(t, yaml, opts...)
	return &stack{issuer: iss, gateway: gw, url: h2ctest.Serve(t, gw.Handler()), admin: h2ctest.Serve(t, gw.AdminHandler()), yaml: yaml}
}

func waitReady(t testing.TB, admin string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready after 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// licensingClient calls the gateway with the given protocol option and a
// bearer token on every call.
func (s *stack) licensingClient(tok string, opts ...connect.ClientOption) licensingv1connect.LicensingServiceClient {
	client := &http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}
	return licensingv1connect.NewLicensingServiceClient(client, s.url, opts...)
}

type bearer struct {
	tok  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.base.RoundTrip(r)
}

var protocols = map[string][]connect.ClientOption{
	"connect": nil,
	"grpc":    {connect.WithGRPC()},
	"grpcweb": {connect.WithGRPCWeb()},
}

func TestClientCredentialsThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, "")
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})

	// The standard Go OAuth client, unmodified, fetches and refreshes the
	// token; connect-go calls through it.
	ctx := context.Background()
	source := s.issuer.Credentials("reader", secret).TokenSource(ctx)
	httpClient := &http.Client{Transport: &oauth2.Transport{Source: source, Base: h2ctest.Transport()}}
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			client := licensingv1connect.NewLicensingServiceClient(httpClient, s.url, opts...)
			res, err := client.ListRequirements(ctx, connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
			if err != nil {
				t.Fatalf("allowed call: %v", err)
			}
			if n := len(res.Msg.GetRequirements()); n == 0 {
				t.Error("no requirements came back")
			}
			_, err = client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"}))
			if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "missing LIC.READ_ORDERS") {
				t.Errorf("call needing an ungranted permission = %v, want PermissionDenied naming LIC.READ_ORDERS", err)
			}
		})
	}

	// The admin listener's /metrics shows the decisions and the key fetches.
	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`portcullis_decisions_total{`, `portcullis_outcome="denied"`, `portcullis_outcome="allowed"`,
		`portcullis_jwks_refreshes_total{`, `portcullis_jwks_keys{`, `portcullis_auth_duration_seconds_bucket{`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestKeyRotationThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, "")
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	old := s.issuer.Token(t, "reader", secret)
	call := func(tok string) error {
		_, err := s.licensingClient(tok).ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
		return err
	}
	if err := call(old); err != nil {
		t.Fatalf("token of the first key: %v", err)
	}
	newKID := s.issuer.RotateKey(t, issuer.ES256)
	fresh := s.issuer.Token(t, "reader", secret)
	if kid := headerKID(t, fresh); kid != newKID || kid == headerKID(t, old) {
		t.Fatalf("new token's kid = %q, want the new key's %q", kid, newKID)
	}
	// The gateway has never seen the new kid: it refetches the JWKS once.
	if err := call(fresh); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
	if err := call(old); err != nil {
		t.Errorf("token of the old key, not yet expired: %v", err)
	}
}

func TestRateLimitThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, `
rate_limit:
  tiers:
    tiny: {override: {requests: 3, period: 1h, burst: 3}}
`)
	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := "tiny-" + name
			secret := s.issuer.AddClient(t, issuer.Client{ID: id, Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "tiny"})
			client := s.licensingClient(s.issuer.Token(t, id, secret), opts...)
			req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
			for i := range 3 {
				res, err := client.ListRequirements(context.Background(), req)
				if err != nil {
					t.Fatalf("call %d within the budget: %v", i+1, err)
				}
				if got, want := res.Header().Get("RateLimit"), fmt.Sprintf(";r=%d;", 2-i); !strings.Contains(got, want) {
					t.Errorf("call %d: RateLimit %q, want remaining %s", i+1, got, want)
				}
				if got := res.Header().Get("RateLimit-Policy"); !strings.Contains(got, "q=3") || !strings.Contains(got, "w=3600") {
					t.Errorf("call %d: RateLimit-Policy %q, want q=3 w=3600", i+1, got)
				}
			}
			_, err := client.ListRequirements(context.Background(), req)
			var cerr *connect.Error
			if !errors.As(err, &cerr) || cerr.Code() != connect.CodeResourceExhausted {
				t.Fatalf("call over the budget = %v, want ResourceExhausted", err)
			}
			retry, convErr := strconv.Atoi(cerr.Meta().Get("Retry-After"))
			if convErr != nil || retry < 1000 || retry > 1200 {
				t.Errorf("Retry-After = %q, want about 1200 (one request per 20 minutes)", cerr.Meta().Get("Retry-After"))
			}
			if got := cerr.Meta().Get("RateLimit"); !strings.Contains(got, ";r=0;") {
				t.Errorf("RateLimit on refusal = %q, want r=0", got)
			}
			// Another client has its own budget.
			other := "other-" + name
			otherSecret := s.issuer.AddClient(t, issuer.Client{ID: other, Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "tiny"})
			if _, err := s.licensingClient(s.issuer.Token(t, other, otherSecret), opts...).ListRequirements(context.Background(), req); err != nil {
				t.Errorf("another client's first call: %v", err)
			}
		})
	}
	// Over HTTP, the refusal is a 429 with Retry-After.
	secret := s.issuer.AddClient(t, issuer.Client{ID: "curl", Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "tiny"})
	tok := s.issuer.Token(t, "curl", secret)
	var last *http.Response
	for range 4 {
		last = postJSON(t, s.url+"/example.licensing.v1.LicensingService/ListRequirements", tok, `{"jurisdiction":"US-CA","businessKind":"restaurant"}`)
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("fourth POST: %d, Retry-After %q; want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
}

func postJSON(t *testing.T, url, tok, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(data)))
	return resp
}

func headerKID(t *testing.T, tok string) string {
	t.Helper()
	return decodeHeader(t, tok)["kid"]
}

// inventoryProto declares a service that is not compiled into any binary:
// the gateway learns it from an image at run time.
const inventoryProto = `syntax = "proto3";
package inventory.v1;
import "gateway/v1/options.proto";

enum InventoryPermission {
  option (gateway.v1.domain) = {name: "INV", description: "Inventory"};
  INVENTORY_PERMISSION_UNSPECIFIED = 0;
  INVENTORY_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  INVENTORY_PERMISSION_ADJUST = 2 [(gateway.v1.permission) = {mask: 2}];
}
message StockRequest { string sku = 1; int64 delta = 2; }
message StockResponse { string sku = 1; int64 quantity = 2; string adjusted_by = 3; }
service InventoryService {
  rpc GetStock(StockRequest) returns (StockResponse) {
    option (gateway.v1.access) = {requires: ["INV.READ"]};
  }
  rpc AdjustStock(StockRequest) returns (StockResponse) {
    option (gateway.v1.access) = {requires: ["INV.READ", "INV.ADJUST"]};
  }
}
`

// dynamicBackend serves every unary method of svc with dynamic messages:
// the response echoes the sku, with quantity 42 and the gateway's client id.
func dynamicBackend(t *testing.T, svc protoreflect.ServiceDescriptor) string {
	t.Helper()
	mux := http.NewServeMux()
	for i := range svc.Methods().Len() {
		md := svc.Methods().Get(i)
		procedure := "/" + string(svc.FullName()) + "/" + string(md.Name())
		mux.Handle(procedure, connect.NewUnaryHandler(procedure,
			func(ctx context.Context, req *connect.Request[dynamicpb.Message]) (*connect.Response[dynamicpb.Message], error) {
				out := dynamicpb.NewMessage(md.Output())
				fields := md.Output().Fields()
				out.Set(fields.ByName("sku"), req.Msg.Get(md.Input().Fields().ByName("sku")))
				out.Set(fields.ByName("quantity"), protoreflect.ValueOfInt64(42))
				out.Set(fields.ByName("adjusted_by"), protoreflect.ValueOfString(req.Header().Get("Portcullis-Client-Id")))
				return connect.NewResponse(out), nil
			},
			connect.WithSchema(md),
			connect.WithRequestInitializer(func(_ connect.Spec, msg any) error {
				m, ok := msg.(*dynamicpb.Message)
				if !ok {
					return fmt.Errorf("unexpected message type %T", msg)
				}
				*m = *dynamicpb.NewMessage(md.Input())
				return nil
			}),
		))
	}
	return h2ctest.Serve(t, mux)
}

func TestServiceFromImageThroughGateway(t *testing.T) {
	t.Parallel()
	image := prototest.WriteImage(t, map[string]string{"inventory/v1/inventory.proto": inventoryProto})
	files, err := catalog.LoadImage(image)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protoregistry.GlobalFiles.FindDescriptorByName("inventory.v1.InventoryService"); err == nil {
		t.Fatal("the inventory service is compiled in; this test needs one that is not")
	}
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := files.FindDescriptorByName("inventory.v1.InventoryService")
	backend := dynamicBackend(t, desc.(protoreflect.ServiceDescriptor))
	iss := issuertest.Start(t, cat)
	s := startGateway(t, iss, fmt.Sprintf(`
descriptors:
  images: [%q]
issuers:
  - {issuer: %q, audiences: [%q], discovery: true}
routes:
  - {service: inventory.v1.InventoryService, backend: %q}
`, image, iss.URL, issuertest.Audience, backend))

	reader := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"INV.READ"}})
	tok := iss.Token(t, "reader", reader)
	resp := postJSON(t, s.url+"/inventory.v1.InventoryService/GetStock", tok, `{"sku":"sku-42"}`)
	body, _ := io.ReadAll(resp.Body)
	var stock map[string]string
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &stock) != nil ||
		stock["sku"] != "sku-42" || stock["quantity"] != "42" || stock["adjustedBy"] != "reader" {
		t.Errorf("GetStock: %d %s", resp.StatusCode, body)
	}
	resp = postJSON(t, s.url+"/inventory.v1.InventoryService/AdjustStock", tok, `{"sku":"sku-42","delta":1}`)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"message":"missing INV.ADJUST"`) {
		t.Errorf("AdjustStock without INV.ADJUST: %d %s", resp.StatusCode, body)
	}
	resp = postJSON(t, s.url+"/inventory.v1.InventoryService/GetStock", "", `{"sku":"sku-42"}`)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GetStock without a token: %d", resp.StatusCode)
	}
}

func TestRoutesFailClosed(t *testing.T) {
	t.Parallel()
	image := prototest.WriteImage(t, map[string]string{
		"plain/v1/plain.proto": "syntax = \"proto3\";\npackage plain.v1;\nmessage M {}\nservice PlainService { rpc Do(M) returns (M); }\n",
	})
	cfg, err := config.Parse("routes.yaml", []byte(fmt.Sprintf(`
descriptors: {images: [%q], compiled_in: true}
routes:
  - {service: nope.v1.NopeService, backend: "http://127.0.0.1:1"}
  - {service: plain.v1.PlainService, backend: "http://127.0.0.1:1"}
  - {service: example.licensing.v1.Jurisdiction, backend: "http://127.0.0.1:1"}
`, image)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg)
	if err == nil {
		gw.Close()
		t.Fatal("New accepted routes to services that declare no access")
	}
	for _, want := range []string{
		"routes[0].service: nope.v1.NopeService is not in the descriptors",
		"routes[1].service: plain.v1.PlainService declares no access: its file plain/v1/plain.proto does not import gateway/v1/options.proto",
		"routes[2].service: example.licensing.v1.Jurisdiction is not a service",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	// An issuer that is down: the gateway starts, but is not ready.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	cfg, err := config.Parse("admin.yaml", []byte(fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [x], discovery: true}]
routes: [{service: example.orders.v1.OrdersService, backend: "http://127.0.0.1:1"}]
`, down)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	admin := h2ctest.Serve(t, gw.AdminHandler())
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 200} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s = %d %s, want %d", path, resp.StatusCode, body, want)
		}
		if path == "/readyz" && !strings.Contains(string(body), "not ready") {
			t.Errorf("/readyz body %s", body)
		}
	}
}

// TestReplicasShareRedisBudget runs two gateways with one Redis store: the
// budget is the budget, whichever replica a call reaches.
func TestReplicasShareRedisBudget(t *testing.T) {
	t.Parallel()
	prefix := fmt.Sprintf("portcullis-test:%s:%d:", t.Name(), time.Now().UnixNano())
	extra := fmt.Sprintf(`
rate_limit:
  store: redis
  redis: {addr: "127.0.0.1:6379", prefix: %q, timeout: 500ms}
  tiers:
    metered: {override: {requests: 40, period: 1h, burst: 40}}
`, prefix)
	first := newStack(t, extra)
	// The second replica trusts the same issuer and routes to the same
	// backends: the first one's configuration.
	cfgYAML := fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes:
  - {service: example.licensing.v1.LicensingService, backend: "http://127.0.0.1:1"}
health: {interval: 0s} # the backend is never called: the budget is spent in the gate
`, first.issuer.URL, issuertest.Audience) + extra
	second := startGateway(t, first.issuer, cfgYAML)
	if !redisAvailable() {
		if os.Getenv("CI") == "true" {
			t.Fatal("Redis at 127.0.0.1:6379 is required under CI")
		}
		t.Skip("no Redis at 127.0.0.1:6379")
	}
	secret := first.issuer.AddClient(t, issuer.Client{ID: "metered", Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "metered"})
	tok := first.issuer.Token(t, "metered", secret)
	// The second replica's backend is unreachable: an admitted call fails
	// with Unavailable there, a refused one with ResourceExhausted.
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				s := first
				if (w+i)%2 == 1 {
					s = second
				}
				_, err := s.licensingClient(tok).ListRequirements(context.Background(),
					connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
				switch {
				case err == nil, connect.CodeOf(err) == connect.CodeUnavailable:
					admitted.Add(1)
				case connect.CodeOf(err) == connect.CodeResourceExhausted:
					refused.Add(1)
				default:
					t.Errorf("unexpected %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 40 || refused.Load() != 80 {
		t.Errorf("two replicas admitted %d and refused %d of 120 calls; want exactly 40 admitted", admitted.Load(), refused.Load())
	}
}

func redisAvailable() bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
