package ratelimit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// slowTier admits one call of GetOrder every 1.25s.
var slowTier = ratelimit.WithPolicy(ratelimit.Policy{
	Tiers: map[string]ratelimit.Tier{"slow": {Override: &catalog.RateLimit{Requests: 4, Period: 5 * time.Second, Burst: 1}}},
})

// TestGateRefusesBeforeReadingTheBody sends, once the budget is spent, a
// unary call whose body never comes: the gate refuses it at once, where
// the interceptor alone waits for the body it decides after.
func TestGateRefusesBeforeReadingTheBody(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, contentType string
		wantStatus        int
		wantGRPCStatus    string
	}{
		{name: "connect", contentType: "application/proto", wantStatus: http.StatusTooManyRequests},
		{name: "grpc", contentType: "application/grpc", wantStatus: http.StatusOK, wantGRPCStatus: "8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			post := func(f *fixture, body io.Reader) (*http.Response, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				t.Cleanup(cancel)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+getOrder, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", tt.contentType)
				req.Header.Set("Te", "trailers")
				req.Header.Set("X-Test-Client", "acme")
				req.Header.Set("X-Test-Tier", "slow")
				resp, err := f.http.Do(req)
				if err != nil {
					return nil, err
				}
				t.Cleanup(func() { _ = resp.Body.Close() })
				_, err = io.ReadAll(resp.Body) // to the trailers
				return resp, err
			}
			spend := func(f *fixture) {
				_, err := getOrderAs(context.Background(), f.orders(), "acme", "slow")
				if err != nil {
					t.Fatal(err)
				}
			}

			gated := newGatedFixture(t, compiledCatalog(t), nil, slowTier)
			spend(gated)
			never, _ := io.Pipe() // written never, closed never
			resp, err := post(gated, never)
			if err != nil {
				t.Fatalf("gated: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || resp.Trailer.Get("Grpc-Status") != tt.wantGRPCStatus {
				t.Fatalf("gated: status %d, grpc-status %q, want %d, %q", resp.StatusCode, resp.Trailer.Get("Grpc-Status"), tt.wantStatus, tt.wantGRPCStatus)
			}
			fields := resp.Header
			if tt.name == "grpc" {
				fields = resp.Trailer
			}
			wantFields(t, fields, `"default";q=4;w=5`, `"default";r=0;t=2`, "2")

			// The control: without the gate, the refusal waits for the body.
			plain := newFixture(t, compiledCatalog(t), nil, slowTier)
			spend(plain)
			never, _ = io.Pipe()
			if _, err := post(plain, never); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("interceptor alone: %v, want to still wait for the body", err)
			}
		})
	}
}

// TestGateGRPCGo checks what a grpc-go client reads of a refusal in the
// gate: the fields and the pushback as trailer metadata, the details in
// the status.
func TestGateGRPCGo(t *testing.T) {
	t.Parallel()
	f := newGatedFixture(t, compiledCatalog(t), nil, slowTier)
	conn, err := grpc.NewClient(strings.TrimPrefix(f.url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-test-client", "acme", "x-test-tier", "slow")
	var header, trailer metadata.MD
	call := func() error {
		return conn.Invoke(ctx, getOrder, &ordersv1.GetOrderRequest{Id: "o-1"}, new(ordersv1.GetOrderResponse), grpc.Header(&header), grpc.Trailer(&trailer))
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if got := header.Get("ratelimit"); len(got) != 1 || got[0] != `"default";r=0;t=2` {
		t.Fatalf("allowed: ratelimit header metadata %q", got)
	}
	err = call()
	if s := status.Convert(err); s.Code() != codes.ResourceExhausted || s.Message() != "rate limit exceeded for "+getOrder+": retry in 1.25s" {
		t.Fatalf("status %v %q, want ResourceExhausted", s.Code(), s.Message())
	}
	for key, want := range map[string]string{"retry-after": "2", "ratelimit": `"default";r=0;t=2`, "ratelimit-policy": `"default";q=4;w=5`, "grpc-retry-pushback-ms": "1250"} {
		if got := trailer.Get(key); len(got) != 1 || got[0] != want {
			t.Errorf("denied: %s trailer metadata %q, want [%q]", key, got, want)
		}
	}
	wantDetails(t, grpcDetails(t, err), limitedDetails(getOrder, "default", 1250*time.Millisecond, "client:acme", "calls 4 per 5s, burst 1, per client"))
}

func TestGateStoreFailure(t *testing.T) {
	t.Parallel()
	store := keyRecorder{allow: func(context.Context, string, ratelimit.Limit, int) (ratelimit.Result, error) {
		return ratelimit.Result{}, errors.New("dial tcp 10.1.2.3:6379: connection refused")
	}}
	f := newGatedFixture(t, compiledCatalog(t), store)
	for _, protocol := range protocols {
		_, err := getOrderAs(context.Background(), f.orders(protocol.opts...), "acme", "")
		wantCode(t, err, connect.CodeUnavailable, "rate limiter unavailable for "+getOrder+": try again later")
	}
}

// TestGateOfAnotherInterceptor checks that an interceptor decides the
// calls that another interceptor's gate decided.
func TestGateOfAnotherInterceptor(t *testing.T) {
	t.Parallel()
	cat := compiledCatalog(t)
	clock := newClock()
	gateLimiter, err := ratelimit.NewInterceptor(cat, newMemory(t, ratelimit.WithClock(clock.Now)), slowTier)
	if err != nil {
		t.Fatal(err)
	}
	spent := newMemory(t, ratelimit.WithClock(clock.Now))
	spent.AllowAt(clock.Now(), getOrder+"|id:acme", ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 1}, 1)
	limiter, err := ratelimit.NewInterceptor(cat, spent, slowTier)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(orders{},
		connect.WithRequestGate(principalFromHeader{}.Gate),
		connect.WithRequestGate(gateLimiter.Gate()),
		connect.WithInterceptors(limiter)))
	client := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(t), h2ctest.Start(t, mux).URL)
	// The gate admits the call; the interceptor, whose budget is spent,
	// refuses it.
	_, err = getOrderAs(context.Background(), client, "acme", "slow")
	cerr := wantCode(t, err, connect.CodeResourceExhausted, "rate limit exceeded for "+getOrder+": retry in 1.25s")
	if got := cerr.Meta().Values("RateLimit"); len(got) != 1 {
		t.Fatalf("RateLimit %q, want the interceptor's field alone", got)
	}
}
