package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/ratelimit"
)

// trivialScript is the baseline: a script that only returns.
var trivialScript = redis.NewScript(`return 1`)

// BenchmarkRedis measures decisions a second against the shared Redis on
// loopback, with 25 goroutines per CPU sharing one client, next to the
// same client running a trivial script (EVALSHA) in the same run.
func BenchmarkRedis(b *testing.B) {
	client, prefix := sharedRedis(b, 64)
	ctx := context.Background()
	run := func(b *testing.B, call func(i int) error) {
		b.SetParallelism(25)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano())
			for pb.Next() {
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	}
	b.Run("Allow", func(b *testing.B) {
		store, err := ratelimit.NewRedis(client, ratelimit.WithKeyPrefix(prefix), ratelimit.WithTimeout(time.Second))
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		run(b, func(i int) error {
			_, err := store.Allow(ctx, benchKeys[i&1023], benchLimit, 1)
			return err
		})
		if s := store.Stats(); s.Failures != 0 {
			b.Fatalf("Redis failed: %+v", s)
		}
	})
	b.Run("baseline=EVALSHA-return-1", func(b *testing.B) {
		run(b, func(int) error { return trivialScript.Run(ctx, client, nil).Err() })
	})
}
