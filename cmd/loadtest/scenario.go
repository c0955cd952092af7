package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/gateway/forward"

	"connectrpc.com/connect"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// target is where the load goes.
type target string

const (
	direct     target = "direct"
	viaGateway target = "gateway"
)

// scenario is one kind of load.
type scenario struct {
	kind        string // "unary" or "bidi"
	protocol    string // "connect" or "grpc"
	size        int    // bytes of payload in each request and response
	concurrency int
	freshToken  bool // a newly signed token per call, defeating the cache
}

func (s scenario) name() string {
	name := fmt.Sprintf("%s %s %s c=%d", s.kind, s.protocol, sizeName(s.size), s.concurrency)
	if s.freshToken {
		name += " fresh-token"
	}
	return name
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

const small, large = 100, 16 << 10

// identityHeader is the header in which the gateway tells backends who
// calls; direct calls send it themselves.
const identityHeader = forward.ClientIDHeader

func allScenarios(quick bool) []scenario {
	if quick {
		return []scenario{
			{kind: "unary", protocol: "connect", size: small, concurrency: 16},
			{kind: "unary", protocol: "grpc", size: small, concurrency: 16, freshToken: true},
			{kind: "bidi", protocol: "grpc", size: small, concurrency: 4},
		}
	}
	var all []scenario
	for _, protocol := range []string{"connect", "grpc"} {
		for _, size := range []int{small, large} {
			for _, c := range []int{1, 16, 64} {
				all = append(all, scenario{kind: "unary", protocol: protocol, size: size, concurrency: c})
			}
		}
	}
	return append(all,
		scenario{kind: "unary", protocol: "connect", size: small, concurrency: 16, freshToken: true},
		scenario{kind: "unary", protocol: "grpc", size: small, concurrency: 16, freshToken: true},
		scenario{kind: "bidi", protocol: "grpc", size: small, concurrency: 8},
		scenario{kind: "bidi", protocol: "connect", size: small, concurrency: 8},
	)
}

// result is one scenario measured against one target.
type result struct {
	Scenario    string        `json:"scenario"`
	Kind        string        `json:"kind"`
	Protocol    string        `json:"protocol"`
	Size        int           `json:"size"`
	Concurrency int           `json:"concurrency"`
	FreshToken  bool          `json:"fresh_token"`
	Target      target        `json:"target"`
	Calls       int           `json:"calls"` // calls, or messages received for bidi
	Errors      int           `json:"errors"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	PerSecond   float64       `json:"per_second"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	// CPU seconds per 1,000 calls (or messages) of each process.
	GatewayCPU float64 `json:"gateway_cpu_per_1k"`
	BackendCPU float64 `json:"backend_cpu_per_1k"`
}

func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Protocols: func() *http.Protocols {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			return &p
		}(),
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}}
}

func (s *stack) token(id int) (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer("loadtest").
		Audience([]string{"portcullis"}).
		Subject("loadtest").
		IssuedAt(time.Now()).
		Expiration(time.Now().Add(time.Hour)).
		JwtID(fmt.Sprintf("load-%d-%d", id, time.Now().UnixNano())).
		Claim("client_id", "loadtest").
		Claim("tier", "bench").
		Claim("perms", map[string]uint64{"ORD": 3, "LIC": 7}).
		Build()
	if err != nil {
		return "", err
	}
	// RFC 9068 access tokens say so in typ; jwx would write "JWT".
	headers := jws.NewHeaders()
	if err := headers.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, s.key, jws.WithProtectedHeaders(headers)))
	return string(signed), err
}

func (s *stack) measure(ctx context.Context, sc scenario, t target, warmup, duration time.Duration, profile string) (result, error) {
	httpClient := newHTTPClient()
	defer httpClient.CloseIdleConnections()
	base := s.backendURL
	if t == viaGateway {
		base = s.gatewayURL
	}
	var opts []connect.ClientOption
	if sc.protocol == "grpc" {
		opts = append(opts, connect.WithGRPC())
	}
	client := ordersv1connect.NewOrdersServiceClient(httpClient, base, opts...)
	reused, err := s.token(0)
	if err != nil {
		return result{}, err
	}
	tokenFor := func(int) (string, error) { return reused, nil }
	if sc.freshToken {
		tokenFor = s.token
	}
	order := &ordersv1.Order{Id: "ord-1", CustomerId: "cust-1", Skus: []string{"sku-1"}, TotalCents: 1299, Notes: strings.Repeat("n", max(sc.size-40, 0))}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		calls     atomic.Int64
		failures  atomic.Int64
		firstErr  error
		errOnce   sync.Once
		mu        sync.Mutex
		latencies []time.Duration
	)
	fail := func(err error) {
		if measuring.Load() {
			failures.Add(1)
		}
		errOnce.Do(func() { firstErr = err })
	}
	var wg sync.WaitGroup
	for w := range sc.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			switch sc.kind {
			case "unary":
				for n := 0; !stop.Load(); n++ {
					tok, err := tokenFor(w*1_000_000 + n)
					if err != nil {
						fail(err)
						return
					}
					req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order})
					req.Header().Set("Authorization", "Bearer "+tok)
					if t == direct {
						req.Header().Set(identityHeader, "loadtest") // what the gateway would add
					}
					began := time.Now()
					_, err = client.PlaceOrder(ctx, req)
					elapsed := time.Since(began)
					if err != nil {
						fail(err)
						continue
					}
					if measuring.Load() {
						calls.Add(1)
						local = append(local, elapsed)
					}
				}
			case "bidi":
				local = s.bidiWorker(ctx, client, reused, t, order, &stop, &measuring, &calls, fail)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}

	time.Sleep(warmup)
	profiled := make(chan error, 1)
	if profile != "" {
		go func() { profiled <- s.profile(ctx, duration, profile) }()
	} else {
		profiled <- nil
	}
	gw0, err1 := s.gateway.cpu()
	be0, err2 := s.backend.cpu()
	began := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(duration):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(began)
	gw1, err3 := s.gateway.cpu()
	be1, err4 := s.backend.cpu()
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(err1, err2, err3, err4, ctx.Err(), <-profiled); err != nil {
		return result{}, err
	}
	n := int(calls.Load())
	if n == 0 {
		return result{}, fmt.Errorf("no call succeeded: %v", firstErr)
	}
	if f := failures.Load(); f > 0 {
		return result{}, fmt.Errorf("%d calls failed, the first with: %v", f, firstErr)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	per1k := func(d time.Duration) float64 { return d.Seconds() / float64(n) * 1000 }
	return result{
		Scenario: sc.name(), Kind: sc.kind, Protocol: sc.protocol, Size: sc.size, Concurrency: sc.concurrency,
		FreshToken: sc.freshToken, Target: t, Calls: n, Elapsed: elapsed,
		PerSecond: float64(n) / elapsed.Seconds(),
		P50:       pct(0.50), P90: pct(0.90), P99: pct(0.99),
		GatewayCPU: per1k(gw1 - gw0), BackendCPU: per1k(be1 - be0),
	}, nil
}

// bidiWorker keeps one SyncOrders stream busy: a sender sends as fast as
// flow control allows while the receiver counts the answers. Latency is not
// measured for streams.
func (s *stack) bidiWorker(ctx context.Context, client ordersv1connect.OrdersServiceClient, tok string, t target, order *ordersv1.Order,
	stop, measuring *atomic.Bool, received *atomic.Int64, fail func(error),
) []time.Duration {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := client.SyncOrders(ctx)
	stream.RequestHeader().Set("Authorization", "Bearer "+tok)
	if t == direct {
		stream.RequestHeader().Set(identityHeader, "loadtest")
	}
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		// An order the backend has, so each message updates it in place.
		synced := proto.CloneOf(order)
		synced.Id = "ord-0001"
		msg := &ordersv1.SyncOrdersRequest{Order: synced}
		for !stop.Load() {
			if err := stream.Send(msg); err != nil {
				return
			}
		}
		_ = stream.CloseRequest()
	}()
	for {
		if _, err := stream.Receive(); err != nil {
			if !stop.Load() {
				fail(err)
			}
			break
		}
		if measuring.Load() {
			received.Add(1)
		}
		if stop.Load() {
			cancel()
		}
	}
	<-sendDone
	_ = stream.CloseResponse()
	return nil
}
