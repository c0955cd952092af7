package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
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
// handler, served in process without a network, with the limiter as an
// interceptor only: the decision and the response fields, next to the same
// handler without a limiter (baseline) in the same run.
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
}

var benchClients = func() []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "client-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	return ids
}()
