package forward_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/freeport"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// replica is one backend replica at a fixed address, which a test can
// kill and start again on the same port; it counts the calls it serves.
type replica struct {
	t     *testing.T
	addr  string
	calls atomic.Int64
	delay atomic.Int64 // added to every call, in nanoseconds
	mu    sync.Mutex
	srv   *httptest.Server
}

func newReplica(t *testing.T, addr string) *replica {
	t.Helper()
	r := &replica{t: t, addr: addr}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *replica) url() string { return "http://" + r.addr }

// deadAddr returns an address where nothing listens, the i-th of several:
// port 1 of 127.0.0.i. A port named by freeport would not do either: a test
// running beside may listen on it a moment later.
func deadAddr(i int) string { return fmt.Sprintf("127.0.0.%d:1", i) }

// start serves the example services at the replica's address.
func (r *replica) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port of a killed replica may linger a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(licensing.New().Handler())
	mux.Handle(orders.New().Handler())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.URL.Path, "/grpc.health.v1.") {
			r.calls.Add(1)
			time.Sleep(time.Duration(r.delay.Load()))
		}
		mux.ServeHTTP(w, req)
	}))
	srv.Listener = ln
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

// kill closes the replica's listener and every connection to it at once.
func (r *replica) kill() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		kill(srv)
		srv.Close()
	}
}

// replicas starts n replicas on 127.0.0.1.
func replicas(t *testing.T, n int) ([]*replica, []string) {
	t.Helper()
	var rs []*replica
	var urls []string
	for range n {
		r := newReplica(t, freeport.Addr(t))
		rs = append(rs, r)
		urls = append(urls, r.url())
	}
	return rs, urls
}

// balancedGateway serves both example services forwarded to be.
func balancedGateway(t *testing.T, be *forward.Backend) string {
	t.Helper()
	t.Cleanup(func() { _ = be.Close() })
	mux := http.NewServeMux()
	for _, svc := range gatewayServices {
		path, h, err := forward.NewHandler(svc, be, forward.WithLogger(nil),
			forward.WithRequestHeaders(func(_ context.Context, h http.Header) { h.Set("Portcullis-Client-Id", testClientID) }))
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle(path, h)
	}
	return h2ctest.Serve(t, mux)
}

// counts returns the calls each replica has served.
func counts(rs []*replica) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.calls.Load()
	}
	return out
}

func getOrder(ctx context.Context, c interface {
	GetOrder(context.Context, *connect.Request[ordersv1.GetOrderRequest]) (*connect.Response[ordersv1.GetOrderResponse], error)
}) (*connect.Response[ordersv1.GetOrderResponse], error) {
	return c.GetOrder(ctx, connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"}))
}

// TestBalancedSpread sends unary calls on one client connection through
// one gateway to three replicas: each balancer gives each replica its
// third, within 10%.
func TestBalancedSpread(t *testing.T) {
	// Not parallel with the package's other tests: it counts calls under
	// load, and its load would slow the tests that measure time.
	for _, balancer := range []forward.Balancer{forward.RoundRobin, forward.LeastRequest} {
		t.Run(balancer.String(), func(t *testing.T) {
			t.Parallel()
			rs, urls := replicas(t, 3)
			be, err := forward.NewBackendEndpoints(urls, forward.WithBalancer(balancer), forward.WithBackendLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			client := ordersClient(balancedGateway(t, be), protocols[2]) // gRPC: one HTTP/2 connection
			const calls, workers = 900, 6
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range workers {
				wg.Go(func() {
					for range calls / workers {
						if _, err := getOrder(t.Context(), client); err != nil {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if n := failed.Load(); n != 0 {
				t.Fatalf("%d calls failed", n)
			}
			got := counts(rs)
			t.Logf("calls per replica: %v", got)
			for i, n := range got {
				if even := float64(calls) / 3; float64(n) < 0.9*even || float64(n) > 1.1*even {
					t.Errorf("replica %d served %d of %d calls, want %.0f±10%%", i, n, calls, even)
				}
			}
			for _, s := range be.Endpoints() {
				if s.State != forward.EndpointUp || s.InFlight != 0 {
					t.Errorf("endpoint %+v, want up with no call in flight", s)
				}
			}
		})
	}
}

// TestLeastRequestAvoidsSlowReplica makes one of three replicas slow:
// least_request sends it far fewer calls than its third, since its calls
// stay in flight longer, while round_robin gives it its third.
func TestLeastRequestAvoidsSlowReplica(t *testing.T) {
	// Not parallel with the package's other tests: it counts calls under
	// load, and its load would slow the tests that measure time.
	for _, balancer := range []forward.Balancer{forward.RoundRobin, forward.LeastRequest} {
		t.Run(balancer.String(), func(t *testing.T) {
			t.Parallel()
			rs, urls := replicas(t, 3)
			rs[0].delay.Store(int64(200 * time.Millisecond))
			be, err := forward.NewBackendEndpoints(urls, forward.WithBalancer(balancer), forward.WithBackendLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			client := ordersClient(balancedGateway(t, be), protocols[2])
			const calls, workers = 600, 12
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range calls / workers {
						if _, err := getOrder(t.Context(), client); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			got := counts(rs)
			share := float64(got[0]) / calls
			t.Logf("calls per replica %v: the slow one served %.0f%%", got, 100*share)
			if balancer == forward.LeastRequest && share > 0.25 {
				t.Errorf("least_request sent %.0f%% of the calls to the slow replica, want under 25%%", 100*share)
			}
			if balancer == forward.RoundRobin && (share < 0.3 || share > 0.37) {
				t.Errorf("round_robin sent %.0f%% of the calls to the slow replica, want a third", 100*share)
			}
		})
	}
}

// TestReplicaKilled kills one of three replicas under load: idempotent
// calls never fail (they are retried on another replica), non-idempotent
// ones fail only with Unavailable; the dead replica leaves the rotation,
// and takes calls again once it is back on its port.
func TestReplicaKilled(t *testing.T) {
	// Not parallel with the package's other tests: it counts calls under
	// load, and its load would slow the tests that measure time.
	for _, balancer := range []forward.Balancer{forward.RoundRobin, forward.LeastRequest} {
		for _, probe := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/probe=%v", balancer, probe), func(t *testing.T) {
				t.Parallel()
				replicaKilled(t, balancer, probe)
			})
		}
	}
}

func replicaKilled(t *testing.T, balancer forward.Balancer, probe bool) {
	rs, urls := replicas(t, 3)
	opts := []forward.BackendOption{forward.WithBalancer(balancer), forward.WithBackendLogger(nil),
		forward.WithOutlierDetection(forward.OutlierDetection{
			ConsecutiveFailures: 3, BaseEjectionTime: 300 * time.Millisecond, MaxEjectionTime: 5 * time.Second, MaxEjectionPercent: 50,
		}),
		forward.WithRetries(forward.RetryPolicy{MaxAttempts: 3, MaxBodyBytes: 64 << 10, BudgetRatio: 0.2, MinPerSecond: 100, Window: 10 * time.Second}),
	}
	if probe {
		opts = append(opts, forward.WithHealthCheck(50*time.Millisecond))
	}
	be, err := forward.NewBackendEndpoints(urls, opts...)
	if err != nil {
		t.Fatal(err)
	}
	client := ordersClient(balancedGateway(t, be), protocols[2])

	var gets, getFailed, places, placeFailed, retried atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if w%4 != 3 {
					gets.Add(1)
					res, err := getOrder(t.Context(), client)
					if err != nil {
						getFailed.Add(1)
						t.Errorf("GetOrder: %v", err)
						continue
					}
					if res.Header().Get(forward.RetriesHeader) != "" {
						retried.Add(1)
					}
					continue
				}
				places.Add(1)
				_, err := client.PlaceOrder(t.Context(), connect.NewRequest(&ordersv1.PlaceOrderRequest{
					Order: &ordersv1.Order{CustomerId: "cust-ada", Skus: []string{"sku-espresso-machine"}, TotalCents: 129900},
				}))
				switch {
				case err == nil:
				case connect.CodeOf(err) == connect.CodeUnavailable:
					placeFailed.Add(1)
				default:
					t.Errorf("PlaceOrder: %v", err)
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopLoad()
	time.Sleep(200 * time.Millisecond)

	killed := time.Now()
	rs[0].kill()
	left := waitFor(t, 5*time.Second, func() bool { return be.Endpoints()[0].State != forward.EndpointUp })
	t.Logf("killed replica out of rotation after %v (%s)", left.Sub(killed).Round(time.Millisecond), be.Endpoints()[0].State)
	before := counts(rs)
	waitFor(t, 10*time.Second, func() bool {
		now := counts(rs)
		return now[1] > before[1]+3 && now[2] > before[2]+3
	})
	during := counts(rs)

	restarted := time.Now()
	rs[0].start()
	back := waitFor(t, 5*time.Second, func() bool { return rs[0].calls.Load() > during[0] })
	t.Logf("restarted replica served again after %v", back.Sub(restarted).Round(time.Millisecond))
	stopLoad()
	t.Logf("calls per replica %v; GetOrder %d, failed %d, retried %d; PlaceOrder %d, Unavailable %d; Retries() %d",
		counts(rs), gets.Load(), getFailed.Load(), retried.Load(), places.Load(), placeFailed.Load(), be.Retries())
	if s := be.Endpoints()[0]; !probe && (s.Failures == 0 || s.Ejections == 0) {
		t.Errorf("killed endpoint %+v: want failures counted and an ejection (no probe found it first)", s)
	}
}

// TestRetryOnAnotherEndpoint balances calls over a dead endpoint and a
// live one, with ejection off: every idempotent call succeeds, those that
// went to the dead one first after a retry, which RetriesHeader tells;
// non-idempotent calls sent to the dead one fail with Unavailable, and are
// never retried.
func TestRetryOnAnotherEndpoint(t *testing.T) {
	t.Parallel()
	live := newReplica(t, freeport.Addr(t))
	be, err := forward.NewBackendEndpoints([]string{"http://" + deadAddr(1), live.url()}, forward.WithBackendLogger(nil),
		forward.WithOutlierDetection(forward.OutlierDetection{BaseEjectionTime: time.Second, MaxEjectionTime: time.Second}),
		forward.WithRetries(forward.RetryPolicy{MaxAttempts: 2, MaxBodyBytes: 64 << 10, BudgetRatio: 1, MinPerSecond: 100, Window: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		client := ordersClient(balancedGateway(t, be), p)
		retried := 0
		before := be.Retries()
		for range 10 {
			res, err := getOrder(t.Context(), client)
			if err != nil {
				t.Fatalf("%s: GetOrder: %v", p.name, err)
			}
			if res.Msg.GetOrder().GetId() != "ord-0001" {
				t.Fatalf("%s: GetOrder answered %v", p.name, res.Msg)
			}
			switch h := res.Header().Get(forward.RetriesHeader); h {
			case "":
			case "1":
				retried++
			default:
				t.Errorf("%s: %s: %q", p.name, forward.RetriesHeader, h)
			}
		}
		if retried == 0 || uint64(retried) != be.Retries()-before {
			t.Errorf("%s: %d calls retried, Retries() grew by %d", p.name, retried, be.Retries()-before)
		}
		before = be.Retries()
		failed := 0
		for range 10 {
			_, err := client.PlaceOrder(t.Context(), connect.NewRequest(&ordersv1.PlaceOrderRequest{
				Order: &ordersv1.Order{CustomerId: "cust-ada", Skus: []string{"sku-espresso-machine"}, TotalCents: 129900},
			}))
			if err != nil {
				wantError(t, err, connect.CodeUnavailable, "backend unavailable")
				failed++
			}
		}
		if failed == 0 || be.Retries() != before {
			t.Errorf("%s: %d PlaceOrder calls failed, Retries() grew by %d; want some failed, none retried", p.name, failed, be.Retries()-before)
		}
	}
}

// waitFor polls cond until it holds, and returns when it did.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Now()
}

// TestRetryBudget makes every endpoint refuse calls: idempotent calls are
// retried, but retries stay within the budget (10% of calls plus one a
// second); non-idempotent calls are never retried.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	urls := []string{"http://" + deadAddr(1), "http://" + deadAddr(2), "http://" + deadAddr(3)}
	be, err := forward.NewBackendEndpoints(urls, forward.WithBackendLogger(nil),
		forward.WithRetries(forward.RetryPolicy{MaxAttempts: 3, MaxBodyBytes: 64 << 10, BudgetRatio: 0.1, MinPerSecond: 1, Window: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	client := ordersClient(balancedGateway(t, be), protocols[0])
	attempts := func() (n uint64) {
		for _, s := range be.Endpoints() {
			n += s.Requests
		}
		return n
	}
	const calls = 200
	start := time.Now()
	for range calls {
		_, err := getOrder(t.Context(), client)
		wantError(t, err, connect.CodeUnavailable, "backend unavailable")
	}
	seconds := int(time.Since(start)/time.Second) + 1
	retries := attempts() - calls
	t.Logf("%d calls, %d attempts in %d s", calls, attempts(), seconds)
	if limit := uint64(calls/10 + 1*seconds + 1); retries > limit || retries != be.Retries() {
		t.Errorf("%d retries (Retries() = %d), want at most %d", retries, be.Retries(), limit)
	}
	if retries < calls/10 {
		t.Errorf("%d retries: the budget allows %d", retries, calls/10)
	}

	before, beforeRetries := attempts(), be.Retries()
	for range 20 {
		_, err := client.PlaceOrder(t.Context(), connect.NewRequest(&ordersv1.PlaceOrderRequest{
			Order: &ordersv1.Order{CustomerId: "cust-ada", Skus: []string{"sku-espresso-machine"}, TotalCents: 129900},
		}))
		wantError(t, err, connect.CodeUnavailable, "backend unavailable")
	}
	if n := attempts() - before; n != 20 || be.Retries() != beforeRetries {
		t.Errorf("20 non-idempotent calls made %d attempts and %d retries, want 20 and none", n, be.Retries()-beforeRetries)
	}
	if err := be.Err(); err == nil {
		t.Error("Err() = nil with every endpoint refusing calls")
	}
}

// TestSingleEndpointNotEjected shows a backend of one endpoint keeping its
// only endpoint in rotation however often it fails, as before there were
// several.
func TestSingleEndpointNotEjected(t *testing.T) {
	t.Parallel()
	be, err := forward.NewBackend("http://"+deadAddr(1), forward.WithBackendLogger(nil),
		forward.WithOutlierDetection(forward.OutlierDetection{ConsecutiveFailures: 1, BaseEjectionTime: time.Minute, MaxEjectionTime: time.Minute, MaxEjectionPercent: 50}))
	if err != nil {
		t.Fatal(err)
	}
	client := ordersClient(balancedGateway(t, be), protocols[2])
	for range 5 {
		_, err := getOrder(t.Context(), client)
		wantError(t, err, connect.CodeUnavailable, "backend unavailable")
	}
	if s := be.Endpoints(); len(s) != 1 || s[0].State != forward.EndpointUp || s[0].Ejections != 0 || s[0].Requests != 5 {
		t.Errorf("Endpoints() = %+v, want one up, never ejected, 5 requests", s)
	}
}

func TestBackendEndpointsOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		urls []string
		opts []forward.BackendOption
		want string
	}{
		{"mixed schemes", []string{"http://a:1", "https://b:2"}, nil, `every endpoint must be http://`},
		{"none", nil, nil, "no endpoint URL and no WithDNS"},
		{"dns name", nil, []forward.BackendOption{forward.WithDNS("orders", "http", 0, nil)}, `WithDNS("orders"): not host:port`},
		{"dns scheme", nil, []forward.BackendOption{forward.WithDNS("orders:80", "ftp", 0, nil)}, `scheme "ftp" is not http or https`},
		{"attempts", []string{"http://a:1"}, []forward.BackendOption{forward.WithRetries(forward.RetryPolicy{MaxAttempts: 9, Window: time.Second})}, "MaxAttempts 9 is not between 1 and 8"},
		{"ratio", []string{"http://a:1"}, []forward.BackendOption{forward.WithRetries(forward.RetryPolicy{MaxAttempts: 2, BudgetRatio: 2, Window: time.Second})}, "BudgetRatio 2 is not between 0 and 1"},
		{"ejection", []string{"http://a:1"}, []forward.BackendOption{forward.WithOutlierDetection(forward.OutlierDetection{ConsecutiveFailures: 1, BaseEjectionTime: time.Second})}, "MaxEjectionTime 0s at least as long"},
		{"balancer", []string{"http://a:1"}, []forward.BackendOption{forward.WithBalancer(7)}, "WithBalancer(7): unknown balancer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			be, err := forward.NewBackendEndpoints(tc.urls, tc.opts...)
			if err == nil {
				_ = be.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := forward.ParseBalancer("random"); err == nil || !errors.Is(err, err) {
		t.Error("ParseBalancer(random): no error")
	}
	_ = fmt.Sprint()
}
