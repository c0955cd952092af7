package ratelimit_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/ratelimit"
)

func TestMemoryBoundsKeys(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.WithMaxKeys(100))
	limit := ratelimit.Limit{Requests: 1, Period: time.Hour, Burst: 5}
	for i := range 10_000 {
		if r := m.AllowAt(t0, strconv.Itoa(i), limit, 1); !r.Allowed {
			t.Fatalf("key %d: first request denied", i)
		}
	}
	if n := m.Len(); n > 100 || n < 50 {
		t.Fatalf("Len = %d, want at most 100 and not far below", n)
	}
	if m.Evictions() == 0 {
		t.Fatal("no eviction counted")
	}
}

func TestMemoryEvictsIdleKeysFirst(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.WithMaxKeys(16)) // one shard of 16 keys
	short := ratelimit.Limit{Requests: 1, Period: time.Second, Burst: 1}
	for i := range 16 {
		m.AllowAt(t0, "idle-"+strconv.Itoa(i), short, 1)
	}
	if got := m.Evictions(); got != 0 {
		t.Fatalf("Evictions = %d while filling, want 0", got)
	}
	// An hour later every key is idle: making room forgets them, which
	// loses nothing and counts no eviction.
	long := ratelimit.Limit{Requests: 1, Period: time.Hour, Burst: 1}
	for i := range 8 {
		if r := m.AllowAt(t0.Add(time.Hour), "busy-"+strconv.Itoa(i), long, 1); !r.Allowed {
			t.Fatalf("busy-%d denied", i)
		}
	}
	if got := m.Evictions(); got != 0 {
		t.Fatalf("Evictions = %d, want 0: only idle keys had to go", got)
	}
	if n := m.Len(); n > 16 {
		t.Fatalf("Len = %d, want at most 16", n)
	}
	// The busy keys are still known: a second request is denied.
	for i := range 8 {
		if r := m.AllowAt(t0.Add(time.Hour), "busy-"+strconv.Itoa(i), long, 1); r.Allowed {
			t.Fatalf("busy-%d was forgotten", i)
		}
	}
	// With no idle key left, a new key evicts a busy one and counts it.
	for i := range 16 {
		m.AllowAt(t0.Add(time.Hour), "more-"+strconv.Itoa(i), long, 1)
	}
	if m.Evictions() == 0 {
		t.Fatal("no eviction counted once only busy keys were left")
	}
}

func TestMemoryCleanupForgetsIdleKeys(t *testing.T) {
	t.Parallel()
	clock := newClock()
	m := newMemory(t, ratelimit.WithClock(clock.Now), ratelimit.WithCleanupInterval(time.Millisecond))
	limit := ratelimit.Limit{Requests: 1, Period: time.Second, Burst: 3}
	for i := range 100 {
		if _, err := m.Allow(context.Background(), strconv.Itoa(i), limit, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100 before their budget is back", n)
	}
	clock.Advance(time.Second) // every key's budget is back in full
	deadline := time.Now().Add(10 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cleanup left %d idle keys", m.Len())
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	// Still usable after Close.
	if r, err := m.Allow(context.Background(), "after", limit, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow after Close = %+v, %v", r, err)
	}
}

func TestMemoryConcurrentExactBudget(t *testing.T) {
	t.Parallel()
	m := newMemory(t)
	limit := ratelimit.Limit{Requests: 1, Period: time.Hour, Burst: 500}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				for _, key := range []string{"a", "b"} {
					if m.AllowAt(t0, key, limit, 1).Allowed {
						admitted.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 2*500 {
		t.Fatalf("admitted %d, want exactly %d", got, 2*500)
	}
}

func TestMemoryInvalidLimit(t *testing.T) {
	t.Parallel()
	m := newMemory(t)
	for _, limit := range []ratelimit.Limit{{}, {Requests: 1, Burst: 1}, {Requests: 1, Period: time.Second}} {
		if _, err := m.Allow(context.Background(), "k", limit, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("Allow(%+v) error = %v, want ErrInvalidLimit", limit, err)
		}
	}
}
