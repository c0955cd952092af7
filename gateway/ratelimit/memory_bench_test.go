package ratelimit_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/portcullis/portcullis/gateway/ratelimit"
)

// benchKeys are the keys the benchmarks spread their decisions over.
var benchKeys = func() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "/example.orders.v1.OrdersService/GetOrder|id:client-" + strconv.Itoa(i)
	}
	return keys
}()

// benchLimit admits nearly everything: the benchmarks measure decisions,
// whichever way they go.
var benchLimit = ratelimit.Limit{Requests: 1_000_000_000, Period: time.Second, Burst: 1_000_000}

// BenchmarkMemory measures one decision of the in-memory store, with the
// time passed in (AllowAt) and read from the clock (Allow), each goroutine
// walking the keys from its own offset. Baselines in the same run: a
// golang.org/x/time/rate Limiter (one key, its own mutex), and the common
// per-key map of such limiters under one mutex.
func BenchmarkMemory(b *testing.B) {
	var offsets atomic.Int64
	parallel := func(b *testing.B, decide func(key string)) {
		b.ReportAllocs()
		cpu := processCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			i := int(offsets.Add(257))
			for pb.Next() {
				decide(benchKeys[i&1023])
				i++
			}
		})
		b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("AllowAt", func(b *testing.B) {
		m := newMemory(b)
		for _, key := range benchKeys {
			m.AllowAt(t0, key, benchLimit, 1)
		}
		b.ResetTimer()
		parallel(b, func(key string) { m.AllowAt(t0, key, benchLimit, 1) })
	})
	b.Run("Allow", func(b *testing.B) {
		m := newMemory(b)
		ctx := context.Background()
		b.ResetTimer()
		parallel(b, func(key string) { _, _ = m.Allow(ctx, key, benchLimit, 1) })
	})
	b.Run("baseline=x-time-rate-one-key", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(benchLimit.Requests), benchLimit.Burst)
		parallel(b, func(string) { l.AllowN(t0, 1) })
	})
	b.Run("baseline=x-time-rate-map-one-mutex", func(b *testing.B) {
		var mu sync.Mutex
		limiters := make(map[string]*rate.Limiter)
		now := time.Now()
		parallel(b, func(key string) {
			mu.Lock()
			l, ok := limiters[key]
			if !ok {
				l = rate.NewLimiter(rate.Limit(benchLimit.Requests), benchLimit.Burst)
				limiters[key] = l
			}
			mu.Unlock()
			l.AllowN(now, 1)
		})
	})
}
