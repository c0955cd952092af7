package ratelimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// BenchmarkHandler measures one allowed unary call through a connect
// handler, served in process without a network: with the limiter as an
// interceptor only; with its decision in the gate and the interceptor
// writing the fields; with the guard in front of the gate too; next to the
// same handler without a limiter (baseline) in the same run.
func BenchmarkHandler(b *testing.B) {
	body, err := proto.Marshal(&ordersv1.GetOrderRequest{Id: "o-1"})
	if err != nil {
		b.Fatal(err)
	}
	memory := newMemory(b)
	limiter, err := ratelimit.NewInterceptor(compiledCatalog(b), memory, ratelimit.WithPolicy(ratelimit.Policy{
		Tiers: map[string]ratelimit.Tier{"": {Override: &catalog.RateLimit{Requests: 1_000_000_000, Period: time.Second, Burst: 1_000_000}}},
	}))
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, opts ...connect.HandlerOption) {
		_, handler := ordersv1connect.NewOrdersServiceHandler(orders{}, opts...)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			req := httptest.NewRequest(http.MethodPost, getOrder, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("X-Test-Client", benchClients[i&1023])
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	}
	b.Run("baseline=no-limiter", func(b *testing.B) {
		run(b, connect.WithInterceptors(principalFromHeader{}))
	})
	b.Run("interceptor", func(b *testing.B) {
		run(b, connect.WithInterceptors(principalFromHeader{}, limiter))
	})
	b.Run("gate", func(b *testing.B) {
		run(b, connect.WithRequestGate(principalFromHeader{}.Gate), connect.WithRequestGate(limiter.Gate()),
			connect.WithInterceptors(limiter))
	})
	b.Run("guard+gate", func(b *testing.B) {
		guard, err := ratelimit.NewGuard()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = guard.Close() })
		run(b, connect.WithRequestGate(guard.Wrap(principalFromHeader{}.Gate)), connect.WithRequestGate(limiter.Gate()),
			connect.WithInterceptors(limiter))
	})
}

// BenchmarkGuard measures the guard's part of a call: that of an address
// it lets through, and that of an address in cool-down, refused.
func BenchmarkGuard(b *testing.B) {
	spec := connect.Spec{Procedure: getOrder, StreamType: connect.StreamTypeUnary}
	header := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	pass := func(ctx context.Context, _ connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
		return ctx, nil
	}
	fail := func(context.Context, connect.Spec, connect.Peer, http.Header) (context.Context, error) {
		return nil, connect.NewError(connect.CodeUnauthenticated, nil)
	}
	for _, bench := range []struct {
		name string
		gate connect.RequestGateFunc
		peer string
	}{
		{name: "pass", gate: pass, peer: "127.0.0.1:41234"},
		{name: "pass-ipv6", gate: pass, peer: "[2001:db8::1]:41234"},
		{name: "cooling", gate: fail, peer: "127.0.0.1:41234"},
	} {
		b.Run(bench.name, func(b *testing.B) {
			guard, err := ratelimit.NewGuard(ratelimit.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = guard.Close() })
			gate := guard.Wrap(bench.gate)
			ctx := context.Background()
			peer := connect.Peer{Addr: bench.peer, Protocol: connect.ProtocolConnect}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = gate(ctx, spec, peer, header)
			}
		})
	}
}

var benchClients = func() []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "client-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	return ids
}()
