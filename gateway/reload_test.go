package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// reloadStack is a gateway serving on its own listeners from a
// configuration file the test rewrites, in front of the licensing and
// orders services, trusting a key server that counts its fetches.
type reloadStack struct {
	t          *testing.T
	gw         *gateway.Gateway
	file       string
	url, admin string
	idp        *jwttest.IdP
	signer     *jwttest.Signer
	lic, ord   string // the backends' URLs
	logs       *logtest.Buffer
}

func newReloadStack(t *testing.T, extra string, opts ...gateway.Option) *reloadStack {
	t.Helper()
	s := &reloadStack{t: t, signer: jwttest.NewEC("k1"), logs: &logtest.Buffer{}}
	s.idp = jwttest.NewIdP(t, s.signer)
	_, lic := licensing.New().Handler()
	_, ord := orders.New().Handler()
	s.lic, s.ord = h2ctest.Serve(t, lic), h2ctest.Serve(t, ord)
	s.file = filepath.Join(t.TempDir(), "portcullis.yaml")
	s.write(extra)
	cfg, err := config.Load(s.file)
	if err != nil {
		t.Fatal(err)
	}
	s.gw, err = gateway.New(context.Background(), cfg, append([]gateway.Option{
		gateway.WithLogger(slog.New(slog.NewJSONHandler(s.logs, nil))), gateway.WithConfigFile(s.file)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.gw.Close() })
	main, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.url, s.admin = "http://"+main.Addr().String(), "http://"+admin.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.gw.Serve(ctx, main, admin) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady(t, s.admin)
	return s
}

// write writes the configuration file with extra settings; unless extra
// has a reload section, the file is not watched.
func (s *reloadStack) write(extra string) {
	s.t.Helper()
	if !strings.Contains(extra, "reload:") {
		extra += "\nreload: {watch_interval: 0s}\n"
	}
	if !strings.Contains(extra, "health:") {
		extra += "health: {interval: 0s}\n"
	}
	yaml := fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]
tokens: {refresh_interval: 1h}
routes:
  - {service: example.licensing.v1.LicensingService, backend: %q}
  - {service: example.orders.v1.OrdersService, backend: %q}
`, s.idp.Issuer, s.idp.URL+"/jwks.json", s.lic, s.ord) + extra
	if err := os.WriteFile(s.file, []byte(yaml), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// token mints a token holding every permission of LIC and ORD.
func (s *reloadStack) token(client string) string {
	c := jwttest.ClaimsAt(s.idp.Issuer, "portcullis", time.Now())
	c["client_id"], c["sub"] = client, client
	c["perms"] = map[string]any{"LIC": 7, "ORD": 3}
	return s.signer.Mint(nil, c)
}

func (s *reloadStack) licensing(tok string, opts ...connect.ClientOption) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, s.url, opts...)
}

func (s *reloadStack) orders(tok string, opts ...connect.ClientOption) ordersv1connect.OrdersServiceClient {
	return ordersv1connect.NewOrdersServiceClient(&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}}, s.url, opts...)
}

// reload asks the admin listener to reload and returns its answer.
func (s *reloadStack) reload() (int, reloadAnswer) {
	s.t.Helper()
	resp, err := http.Post(s.admin+gateway.ReloadPath, "application/json", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a reloadAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, a
}

type reloadAnswer struct {
	Status     string   `json:"status"`
	Generation uint64   `json:"generation"`
	Mistakes   []string `json:"mistakes"`
}

// readyz returns the body of /readyz, wanting 200.
func (s *reloadStack) readyz() map[string]any {
	s.t.Helper()
	resp, err := http.Get(s.admin + "/readyz")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("/readyz: %d %v", resp.StatusCode, body)
	}
	return body
}

// reloads returns the value of portcullis_reloads_total for result.
func (s *reloadStack) reloads(result string) int {
	s.t.Helper()
	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^portcullis_reloads_total\{[^}]*result="` + result + `"[^}]*\} (\d+)$`).FindSubmatch(text)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func requirements() *connect.Request[licensingv1.ListRequirementsRequest] {
	return connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
}

// limit is a rate_limit section with a default of n calls an hour.
func limit(n int) string {
	return fmt.Sprintf("rate_limit: {default: {requests: %d, period: 1h, burst: %d}}\n", n, n)
}

// TestReloadUnderLoad reloads a serving gateway 100 times, alternating its
// default rate limit and its backends' health interval (so that every
// reload connects to the backends anew, and the generations before close
// their connections once their calls end), while unary calls go on without pause and streams,
// server and bidi, stay open: no call fails, the streams opened before the
// reloads go on and end normally, and the limit of the last reload is in
// force after.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	s := newReloadStack(t, limit(1_000_000))
	tok := s.token("loader")

	// A server stream and a bidi stream, opened before the reloads.
	watch, err := s.licensing(tok).WatchLicenceOrders(context.Background(), connect.NewRequest(&licensingv1.WatchLicenceOrdersRequest{BusinessId: "biz-acme"}))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if !watch.Receive() {
		t.Fatalf("watch: no first message: %v", watch.Err())
	}
	bidi := s.orders(tok, connect.WithGRPC()).SyncOrders(context.Background())
	order := &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}, TotalCents: 100}
	syncOnce := func(i int) error {
		order.TotalCents = int64(100 + i)
		if err := bidi.Send(&ordersv1.SyncOrdersRequest{Order: order}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		res, err := bidi.Receive()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if res.GetOrder().GetTotalCents() != int64(100+i) {
			return fmt.Errorf("got total %d, want %d", res.GetOrder().GetTotalCents(), 100+i)
		}
		order.Id = res.GetOrder().GetId()
		return nil
	}
	if err := syncOnce(0); err != nil {
		t.Fatalf("sync: %v", err)
	}

	// Unary calls without pause, in each protocol.
	stop := make(chan struct{})
	var calls, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for _, name := range []string{"connect", "grpc", "grpcweb"} {
		client := s.licensing(tok, protocols[name]...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := client.ListRequirements(context.Background(), requirements())
				calls.Add(1)
				if err != nil {
					failed.Add(1)
					err = fmt.Errorf("%s: %w", name, err)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}

	const reloads = 100
	var want uint64 = 1
	for i := range reloads {
		s.write(limit(1_000_000+i%2) + fmt.Sprintf("health: {interval: %ds}\n", 3600+i%2))
		n, err := s.gw.ReloadFile(context.Background())
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		want++
		if n != want {
			t.Fatalf("reload %d: generation %d, want %d", i, n, want)
		}
		if i%10 == 0 { // the bidi stream goes on through the reloads
			if err := syncOnce(i + 1); err != nil {
				t.Fatalf("sync after reload %d: %v", i, err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d calls failed during the reloads; first: %v", f, calls.Load(), *firstErr.Load())
	}
	if calls.Load() < reloads {
		t.Fatalf("only %d calls during %d reloads", calls.Load(), reloads)
	}
	t.Logf("%d calls during %d reloads, none failed", calls.Load(), reloads)

	// The streams opened on the first generation end normally.
	if err := syncOnce(reloads + 1); err != nil {
		t.Fatalf("sync after the reloads: %v", err)
	}
	if err := bidi.CloseRequest(); err != nil {
		t.Fatal(err)
	}
	if _, err := bidi.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi stream ended with %v, want a normal end", err)
	}
	if err := bidi.CloseResponse(); err != nil {
		t.Fatal(err)
	}
	created, err := s.licensing(tok).CreateLicenceOrder(context.Background(), connect.NewRequest(&licensingv1.CreateLicenceOrderRequest{
		BusinessId: "biz-acme", RequirementId: "gb-lnd-premises",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for watch.Receive() && watch.Msg().GetOrder().GetId() != created.Msg.GetOrder().GetId() {
	}
	if watch.Err() != nil {
		t.Fatalf("server stream after the reloads: %v", watch.Err())
	}
	if err := watch.Close(); err != nil {
		t.Fatal(err)
	}

	// The last reload's limit rules new calls.
	s.write(limit(1))
	if _, err := s.gw.ReloadFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := s.licensing(s.token("fresh"))
	if _, err := client.ListRequirements(context.Background(), requirements()); err != nil {
		t.Fatalf("first call under the new limit: %v", err)
	}
	_, err = client.ListRequirements(context.Background(), requirements())
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("second call under a limit of 1: %v, want ResourceExhausted", err)
	}
}

const undeclaredProto = `syntax = "proto3";
package test.undeclared.v1;
import "gateway/v1/options.proto";
service UndeclaredService {
  rpc Declared(Empty) returns (Empty) { option (gateway.v1.access) = {public: true}; }
  rpc Forgotten(Empty) returns (Empty);
}
message Empty {}
`

// TestReloadRefused asks the admin listener to reload broken
// configurations: bad YAML, an unknown key, a routed service with an RPC
// that declares no access. Each is refused whole, with its mistakes: the
// generation serving stays and calls go on, the failure is counted and
// /readyz, still ready, shows it; a good file then reloads and clears it.
func TestReloadRefused(t *testing.T) {
	t.Parallel()
	s := newReloadStack(t, "")
	client := s.licensing(s.token("steady"))
	image := prototest.WriteImage(t, map[string]string{"test/undeclared/v1/undeclared.proto": undeclaredProto})

	for i, tc := range []struct {
		name, file, mistake string
	}{
		{"syntax", "routes: [\n  - {service: x\n", "portcullis.yaml:"},
		{"unknown key", "rate_limit: {defualt: {requests: 1, period: 1s}}\n", `rate_limit.defualt: unknown key; did you mean "default"?`},
		{"undeclared RPC", fmt.Sprintf("descriptors: {images: [%q], compiled_in: true}\nroutes:\n  - {service: example.licensing.v1.LicensingService, backend: %q}\n  - {service: test.undeclared.v1.UndeclaredService, backend: %q}\n", image, s.lic, s.lic), "Forgotten"},
	} {
		if tc.name == "syntax" {
			if err := os.WriteFile(s.file, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
		} else if tc.name == "undeclared RPC" {
			// A whole file of its own, so that its routes are the only ones.
			yaml := fmt.Sprintf("issuers: [{issuer: %q, audiences: [portcullis], jwks_url: %q}]\nreload: {watch_interval: 0s}\nhealth: {interval: 0s}\n", s.idp.Issuer, s.idp.URL+"/jwks.json") + tc.file
			if err := os.WriteFile(s.file, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			s.write(tc.file)
		}
		code, answer := s.reload()
		if code != http.StatusUnprocessableEntity || answer.Status != "refused" || answer.Generation != 1 {
			t.Fatalf("%s: POST %s = %d %+v, want 422 refused at generation 1", tc.name, gateway.ReloadPath, code, answer)
		}
		if !strings.Contains(strings.Join(answer.Mistakes, "\n"), tc.mistake) {
			t.Errorf("%s: mistakes %q, want one with %q", tc.name, answer.Mistakes, tc.mistake)
		}
		if _, err := client.ListRequirements(context.Background(), requirements()); err != nil {
			t.Fatalf("%s: a call after the refused reload: %v", tc.name, err)
		}
		body := s.readyz()
		if body["generation"] != float64(1) || !strings.Contains(fmt.Sprint(body["last_reload_error"]), tc.mistake) {
			t.Errorf("%s: /readyz = %v, want generation 1 and last_reload_error with %q", tc.name, body, tc.mistake)
		}
		if n := s.reloads("failed"); n != i+1 {
			t.Errorf("%s: portcullis_reloads_total{result=\"failed\"} = %d, want %d", tc.name, n, i+1)
		}
	}
	if logs := s.logs.String(); !strings.Contains(logs, "configuration reload refused") || !strings.Contains(logs, "Forgotten") {
		t.Errorf("refusals not logged with their mistakes:\n%s", logs)
	}

	s.write(limit(5))
	code, answer := s.reload()
	if code != http.StatusOK || answer.Status != "reloaded" || answer.Generation != 2 {
		t.Fatalf("POST %s = %d %+v, want 200 reloaded at generation 2", gateway.ReloadPath, code, answer)
	}
	if body := s.readyz(); body["generation"] != float64(2) || body["last_reload_error"] != nil {
		t.Errorf("/readyz after a good reload = %v", body)
	}
	if n := s.reloads("ok"); n != 1 {
		t.Errorf(`portcullis_reloads_total{result="ok"} = %d, want 1`, n)
	}
}

// TestReloadWatch changes the configuration file of a gateway that watches
// it: the change reloads it, and writing the same content again does not.
func TestReloadWatch(t *testing.T) {
	t.Parallel()
	s := newReloadStack(t, "reload: {watch_interval: 100ms}\n")
	waitGeneration := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.gw.Generation() != want {
			if time.Now().After(deadline) {
				t.Fatalf("generation %d after 10s, want %d", s.gw.Generation(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.write("reload: {watch_interval: 100ms}\n" + limit(1))
	waitGeneration(2)
	client := s.licensing(s.token("watched"))
	if _, err := client.ListRequirements(context.Background(), requirements()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListRequirements(context.Background(), requirements()); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("after the watched change to a limit of 1: %v, want ResourceExhausted", err)
	}

	// The same content, written again with a new modification time.
	data, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.WriteFile(s.file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(s.file, later, later); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := s.gw.Generation(); n != 2 {
		t.Fatalf("an unchanged file reloaded: generation %d", n)
	}
}

// TestReloadKeepsCaches reloads a configuration whose issuers, tokens and
// rate limits did not change: a token verified before is answered from the
// verifier's cache after, with no fetch of the issuer's keys, and a
// caller's spent budget stays spent. The access lines say which generation
// decided each call.
func TestReloadKeepsCaches(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	s := newReloadStack(t, limit(2), gateway.WithTelemetryOptions(telemetry.WithTracerProvider(tp)))
	tok := s.token("cached")
	client := s.licensing(tok)
	for range 2 {
		if _, err := client.ListRequirements(context.Background(), requirements()); err != nil {
			t.Fatal(err)
		}
	}
	fetches := s.idp.Hits.Load()

	s.write(limit(2) + "limits: {max_timeout: 20s}\n")
	if n, err := s.gw.ReloadFile(context.Background()); err != nil || n != 2 {
		t.Fatalf("reload: generation %d, %v", n, err)
	}
	_, err := client.ListRequirements(context.Background(), requirements())
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("third call of a budget of 2, after a reload: %v, want ResourceExhausted", err)
	}
	other := s.orders(tok)
	if _, err := other.GetOrder(context.Background(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "missing"})); connect.CodeOf(err) == connect.CodeUnauthenticated {
		t.Errorf("the token verified before the reload: %v", err)
	}
	if got := s.idp.Hits.Load(); got != fetches {
		t.Errorf("the reload fetched the issuer's keys again: %d fetches, want %d", got, fetches)
	}
	// Each access line names the generation that decided the call.
	generations := map[float64]int{}
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == "call" {
			g, _ := entry["generation"].(float64)
			generations[g]++
		}
	}
	if generations[1] != 2 || generations[2] != 2 || len(generations) != 2 {
		t.Errorf("access lines by generation = %v, want 2 of generation 1 and 2 of generation 2", generations)
	}
	// And so does each server span.
	bySpan := map[int64]int{}
	for _, span := range spans.Ended() {
		if span.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, kv := range span.Attributes() {
			if kv.Key == "portcullis.generation" {
				bySpan[kv.Value.AsInt64()]++
			}
		}
	}
	if bySpan[1] != 2 || bySpan[2] != 2 {
		t.Errorf("server spans by portcullis.generation = %v, want 2 of generation 1 and 2 of generation 2", bySpan)
	}
}
