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
	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// target is where the load goes.
type target string

const (
	direct     target = "direct"
	viaGateway target = "gateway"
	viaHAProxy target = "haproxy"
)

// targets are measured in this order, back to back, for each scenario.
var targets = []target{direct, viaGateway, viaHAProxy}

// The load generators.
const (
	genH2load  = "h2load"
	genConnect = "connect-go"
)

// scenario is one kind of load.
type scenario struct {
	kind       string // "unary" or "bidi"
	protocol   string // "connect" or "grpc"
	size       int    // bytes of payload in each request and response
	conns      int    // connections
	streams    int    // concurrent calls (or streams) on each connection
	freshToken bool   // a newly signed token per call, defeating the cache
	generator  string // genH2load or genConnect
}

func (s scenario) name() string {
	token := "reused"
	if s.freshToken {
		token = "fresh"
	}
	if s.kind == "bidi" {
		return fmt.Sprintf("bidi %s %s", s.protocol, s.concurrency())
	}
	return fmt.Sprintf("unary %s %s %s", s.protocol, s.concurrency(), token)
}

// concurrency is c=N for N calls on one connection, c=C×N for C
// connections of N calls each.
func (s scenario) concurrency() string {
	if s.conns > 1 {
		return fmt.Sprintf("c=%d×%d", s.conns, s.streams)
	}
	return fmt.Sprintf("c=%d", s.streams)
}

const small = 100

// identityHeader is the header in which the gateway tells backends who
// calls; direct calls send it themselves.
const identityHeader = forward.ClientIDHeader

// concurrencies are the loads of every unary scenario: one call at a
// time, 16 concurrent calls on one connection, 4 connections of 16.
var concurrencies = [][2]int{{1, 1}, {1, 16}, {4, 16}}

func allScenarios(quick bool) []scenario {
	if quick {
		return []scenario{
			{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 16, generator: genH2load},
			{kind: "unary", protocol: "connect", size: small, conns: 1, streams: 16, freshToken: true, generator: genConnect},
			{kind: "bidi", protocol: "grpc", size: small, conns: 1, streams: 4, generator: genConnect},
		}
	}
	var all []scenario
	for _, c := range concurrencies {
		unary := scenario{kind: "unary", size: small, conns: c[0], streams: c[1]}
		for _, v := range []struct {
			protocol, generator string
			fresh               bool
		}{
			{"grpc", genH2load, false},
			// h2load sends the same headers on every call.
			{"grpc", genConnect, true},
			{"connect", genConnect, false},
			{"connect", genConnect, true},
		} {
			sc := unary
			sc.protocol, sc.generator, sc.freshToken = v.protocol, v.generator, v.fresh
			all = append(all, sc)
		}
	}
	return append(all,
		scenario{kind: "bidi", protocol: "grpc", size: small, conns: 1, streams: 8, generator: genConnect},
		scenario{kind: "bidi", protocol: "connect", size: small, conns: 1, streams: 8, generator: genConnect},
	)
}

// result is one scenario measured against one target in one cycle.
type result struct {
	Scenario   string        `json:"scenario"`
	Kind       string        `json:"kind"`
	Protocol   string        `json:"protocol"`
	Size       int           `json:"size"`
	Conns      int           `json:"conns"`
	Streams    int           `json:"streams"`
	FreshToken bool          `json:"fresh_token"`
	Generator  string        `json:"generator"`
	Target     target        `json:"target"`
	Cycle      int           `json:"cycle"`
	Calls      int           `json:"calls"` // calls, or messages received for bidi
	Elapsed    time.Duration `json:"elapsed_ns"`
	PerSecond  float64       `json:"per_second"`
	P50        time.Duration `json:"p50_ns"`
	P90        time.Duration `json:"p90_ns"`
	P99        time.Duration `json:"p99_ns"`
	// CPU seconds per 1,000 calls (or messages) of the proxy in the path
	// (the gateway or HAProxy; none for direct calls) and of the backend.
	ProxyCPU   float64 `json:"proxy_cpu_per_1k"`
	BackendCPU float64 `json:"backend_cpu_per_1k"`
	// ProxySysShare is the share of ProxyCPU spent in the kernel.
	ProxySysShare float64 `json:"proxy_sys_share"`
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

func (s *stack) order(sc scenario) *ordersv1.Order {
	return &ordersv1.Order{Id: "ord-1", CustomerId: "cust-1", Skus: []string{"sku-1"}, TotalCents: 1299, Notes: strings.Repeat("n", max(sc.size-40, 0))}
}

// cpuMeter reads the CPU time of the backend and of the proxy in the path.
type cpuMeter struct {
	proxy, backend *process
	p0, b0, ps0    time.Duration
	// proxySys is the system part of the proxy's time, after stop.
	proxySys time.Duration
}

func (s *stack) meter(t target) *cpuMeter { return &cpuMeter{proxy: s.proxy(t), backend: s.backend} }

func (m *cpuMeter) start() error {
	var err1, err2 error
	m.b0, err1 = m.backend.cpu()
	var err3 error
	if m.proxy != nil {
		m.p0, err2 = m.proxy.cpu()
		m.ps0, err3 = m.proxy.sysCPU()
	}
	return errors.Join(err1, err2, err3)
}

// stop returns the CPU time each used since start.
func (m *cpuMeter) stop() (proxy, backend time.Duration, err error) {
	b1, err1 := m.backend.cpu()
	var p1, ps1 time.Duration
	var err2, err3 error
	if m.proxy != nil {
		p1, err2 = m.proxy.cpu()
		ps1, err3 = m.proxy.sysCPU()
	}
	m.proxySys = ps1 - m.ps0
	return p1 - m.p0, b1 - m.b0, errors.Join(err1, err2, err3)
}

// measure runs sc against t: warmup unmeasured, then duration measured.
// With profile set, it saves a CPU profile of the gateway taken during the
// measurement.
func (s *stack) measure(ctx context.Context, sc scenario, t target, warmup, duration time.Duration, profile string) (result, error) {
	// profiled is buffered once the profile starts: a measurement that
	// fails before it does not wait for it.
	profiled := make(chan error, 1)
	profiled <- nil
	startProfile := func() {
		if profile == "" {
			return
		}
		<-profiled
		go func() { profiled <- s.profile(ctx, t, duration, profile) }()
	}
	var (
		m    measured
		err  error
		cpus = s.meter(t)
	)
	if sc.generator == genH2load {
		m, err = s.measureH2load(ctx, sc, t, warmup, duration, cpus, startProfile)
	} else {
		m, err = s.measureConnect(ctx, sc, t, warmup, duration, cpus, startProfile)
	}
	if err := errors.Join(err, <-profiled); err != nil {
		return result{}, err
	}
	slices.Sort(m.latencies)
	pct := func(p float64) time.Duration {
		if len(m.latencies) == 0 {
			return 0
		}
		return m.latencies[min(len(m.latencies)-1, int(p*float64(len(m.latencies))))]
	}
	per1k := func(d time.Duration) float64 { return d.Seconds() / float64(m.calls) * 1000 }
	sysShare := 0.0
	if m.proxyCPU > 0 {
		sysShare = float64(cpus.proxySys) / float64(m.proxyCPU)
	}
	return result{
		Scenario: sc.name(), Kind: sc.kind, Protocol: sc.protocol, Size: sc.size, Conns: sc.conns, Streams: sc.streams,
		FreshToken: sc.freshToken, Generator: sc.generator, Target: t, Calls: m.calls, Elapsed: m.elapsed,
		PerSecond: float64(m.calls) / m.elapsed.Seconds(),
		P50:       pct(0.50), P90: pct(0.90), P99: pct(0.99),
		ProxyCPU: per1k(m.proxyCPU), BackendCPU: per1k(m.backendCPU), ProxySysShare: sysShare,
	}, nil
}

// measured is what one generator saw over the measurement.
type measured struct {
	calls                int
	elapsed              time.Duration
	latencies            []time.Duration
	proxyCPU, backendCPU time.Duration
}

// measureH2load runs h2load twice, for warmup then for duration, reading
// the CPU times around the second run.
func (s *stack) measureH2load(ctx context.Context, sc scenario, t target, warmup, duration time.Duration, cpus *cpuMeter, startProfile func()) (measured, error) {
	tok, err := s.tokens.token(claims{})
	if err != nil {
		return measured{}, err
	}
	body, err := placeOrderBody(s.order(sc))
	if err != nil {
		return measured{}, err
	}
	header := http.Header{
		"Content-Type":  {"application/grpc"},
		"Te":            {"trailers"},
		"Authorization": {"Bearer " + tok},
	}
	if t == direct {
		header.Set(identityHeader, "loadtest") // what the gateway would add
	}
	url := s.url(t)
	// Each run is checked by the orders placed between two probes.
	runChecked := func(n int) (h2loadRun, time.Duration, time.Duration, error) {
		seq0, err := probeGRPC(ctx, url, header, body)
		if err != nil {
			return h2loadRun{}, 0, 0, err
		}
		if err := cpus.start(); err != nil {
			return h2loadRun{}, 0, 0, err
		}
		run, err := runH2load(ctx, s.work, url, header, body, sc.conns, sc.streams, n)
		proxyCPU, backendCPU, cpuErr := cpus.stop()
		if err := errors.Join(err, cpuErr); err != nil {
			return run, 0, 0, err
		}
		seq1, err := probeGRPC(ctx, url, header, body)
		if err != nil {
			return run, 0, 0, fmt.Errorf("after the load: %w", err)
		}
		return run, proxyCPU, backendCPU, run.check(n, seq1-seq0-1)
	}
	// Sized by the fastest rate seen so far, or the warm-up's.
	key := sc.name() + " " + string(t)
	calls := func(d time.Duration) int {
		return max(int(max(s.rates[key], 2000)*d.Seconds()), 200, sc.conns*sc.streams)
	}
	n := calls(warmup)
	warm, _, _, err := runChecked(n)
	if err != nil {
		return measured{}, fmt.Errorf("warm-up: %w", err)
	}
	s.rates[key] = max(s.rates[key], float64(warm.done)/warm.elapsed.Seconds())
	startProfile()
	run, proxyCPU, backendCPU, err := runChecked(calls(duration))
	if err != nil {
		return measured{}, err
	}
	s.rates[key] = max(s.rates[key], float64(run.done)/run.elapsed.Seconds())
	// h2load's clock starts once its connections are up; the CPU times
	// include their setup, a few calls' worth.
	return measured{calls: run.done, elapsed: run.elapsed, latencies: run.latencies, proxyCPU: proxyCPU, backendCPU: backendCPU}, nil
}

// measureConnect drives sc with connect-go clients, one HTTP/2 connection
// per client.
func (s *stack) measureConnect(ctx context.Context, sc scenario, t target, warmup, duration time.Duration, cpus *cpuMeter, startProfile func()) (measured, error) {
	var opts []connect.ClientOption
	if sc.protocol == "grpc" {
		opts = append(opts, connect.WithGRPC())
	}
	clients := make([]ordersv1connect.OrdersServiceClient, sc.conns)
	for i := range clients {
		httpClient := newHTTPClient()
		defer httpClient.CloseIdleConnections()
		clients[i] = ordersv1connect.NewOrdersServiceClient(httpClient, s.url(t), opts...)
	}
	reused, err := s.tokens.token(claims{})
	if err != nil {
		return measured{}, err
	}
	key := sc.name() + " " + string(t)
	var fresh *tokenList
	if sc.freshToken && sc.kind == "unary" && t != direct { // the backend does not verify tokens
		// Pre-minted, so that signing costs nothing during the run: enough
		// for 1.5× the fastest rate seen so far, and the run ends early
		// should they run out.
		rate := max(s.rates[key], 3000)
		n := int(rate*1.5*(warmup+duration).Seconds()) + 1000
		toks, err := s.tokens.mint(n)
		if err != nil {
			return measured{}, err
		}
		fresh = &tokenList{tokens: toks}
	}
	order := s.order(sc)

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
	for w := range sc.conns * sc.streams {
		client := clients[w%sc.conns]
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<14)
			switch sc.kind {
			case "unary":
				for !stop.Load() {
					tok := reused
					if fresh != nil {
						var ok bool
						if tok, ok = fresh.take(); !ok {
							return // the run ends with the tokens
						}
					}
					req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order})
					req.Header().Set("Authorization", "Bearer "+tok)
					if t == direct {
						req.Header().Set(identityHeader, "loadtest") // what the gateway would add
					}
					began := time.Now()
					_, err := client.PlaceOrder(ctx, req)
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
				s.bidiWorker(ctx, client, reused, t, order, &stop, &measuring, &calls, fail)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	select {
	case <-time.After(warmup):
	case <-workersDone:
	}
	startProfile()
	cpuErr := cpus.start()
	began := time.Now()
	measuring.Store(true)
	select {
	case <-time.After(duration):
	case <-workersDone:
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(began)
	proxyCPU, backendCPU, err := cpus.stop()
	stop.Store(true)
	<-workersDone
	if err := errors.Join(cpuErr, err, ctx.Err()); err != nil {
		return measured{}, err
	}
	n := int(calls.Load())
	if n == 0 {
		return measured{}, fmt.Errorf("no call succeeded: %v", firstErr)
	}
	if f := failures.Load(); f > 0 {
		return measured{}, fmt.Errorf("%d calls failed, the first with: %v", f, firstErr)
	}
	if rate := float64(n) / elapsed.Seconds(); rate > s.rates[key] {
		s.rates[key] = rate
	}
	return measured{calls: n, elapsed: elapsed, latencies: latencies, proxyCPU: proxyCPU, backendCPU: backendCPU}, nil
}

// bidiWorker keeps one SyncOrders stream busy: a sender sends as fast as
// flow control allows while the receiver counts the answers. Latency is not
// measured for streams.
func (s *stack) bidiWorker(ctx context.Context, client ordersv1connect.OrdersServiceClient, tok string, t target, order *ordersv1.Order,
	stop, measuring *atomic.Bool, received *atomic.Int64, fail func(error),
) {
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
}
