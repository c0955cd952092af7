package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

const (
	defaultMaxKeys         = 1 << 18
	defaultCleanupInterval = 30 * time.Second
	maxShards              = 256
	minKeysPerShard        = 16
	evictionSample         = 8
)

// Memory is the embedded [Store]: a map from each key to its state, one
// int64 on a cache line of its own, split into shards under their own
// locks. Keys are held as their 64-bit hash under a seed random to the
// process, never as strings: a key takes about 100 bytes, whatever its
// length. It holds at most a configured number of keys ([WithMaxKeys]); a
// background goroutine forgets the keys whose budget is back in full,
// which loses nothing, until [Memory.Close].
//
// A decision does not allocate once its key is known.
type Memory struct {
	seed      maphash.Seed
	shards    []memoryShard
	mask      uint64
	perShard  int
	now       func() int64 // Unix ns
	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

type memoryShard struct {
	mu        sync.Mutex
	tats      map[uint64]*memoryEntry // by the key's hash
	evictions uint64
	_         [40]byte // keep shards on separate cache lines
}

// memoryEntry is one key's theoretical arrival time, in Unix ns, on a
// cache line of its own: updating it writes only this line, and the map
// only changes when keys come and go, so that cores deciding for the same
// keys in turn pass one line between them rather than the map's.
type memoryEntry struct {
	tat int64
	_   [56]byte
}

type memoryConfig struct {
	maxKeys         int
	cleanupInterval time.Duration
	now             func() time.Time
}

// NewMemory returns an in-memory store and starts its cleanup
// goroutine; call Close to stop it. It reports invalid option values.
func NewMemory(opts ...MemoryOption) (*Memory, error) {
	cfg, err := newMemoryConfig(opts)
	if err != nil {
		return nil, err
	}
	return newMemory(cfg), nil
}

// newMemoryConfig applies opts to the defaults. It reports each invalid
// value, and puts the default in its place.
func newMemoryConfig(opts []MemoryOption) (memoryConfig, error) {
	cfg := memoryConfig{maxKeys: defaultMaxKeys, cleanupInterval: defaultCleanupInterval}
	for _, opt := range opts {
		opt.applyToMemory(&cfg)
	}
	var problems []error
	if cfg.maxKeys < 1 {
		problems = append(problems, fmt.Errorf("max keys %d is below 1", cfg.maxKeys))
		cfg.maxKeys = defaultMaxKeys
	}
	if cfg.cleanupInterval <= 0 {
		problems = append(problems, fmt.Errorf("cleanup interval %s is not positive", cfg.cleanupInterval))
		cfg.cleanupInterval = defaultCleanupInterval
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("ratelimit: invalid memory store options: %w", errors.Join(problems...))
	}
	return cfg, nil
}

func newMemory(cfg memoryConfig) *Memory {
	shards := 1
	for shards < maxShards && shards*2*minKeysPerShard <= cfg.maxKeys {
		shards *= 2
	}
	m := &Memory{
		seed:     maphash.MakeSeed(),
		shards:   make([]memoryShard, shards),
		mask:     uint64(shards - 1),
		perShard: max(cfg.maxKeys/shards, 1),
		now:      unixNanoClock(cfg.now),
		done:     make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].tats = make(map[uint64]*memoryEntry)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.cleanup(ctx, cfg.cleanupInterval)
	return m
}

// Allow implements [Store] with the store's clock ([WithClock]).
func (m *Memory) Allow(_ context.Context, key string, limit Limit, n int) (Result, error) {
	if !limit.Valid() {
		return Result{Limit: limit}, ErrInvalidLimit
	}
	return m.allow(m.now(), key, limit, n), nil
}

// AllowAt decides at time now whether a request of cost n fits key's limit,
// and records it if so. It denies every request for a limit that is not
// [Limit.Valid].
func (m *Memory) AllowAt(now time.Time, key string, limit Limit, n int) Result {
	if !limit.Valid() {
		return Result{Limit: limit}
	}
	return m.allow(now.UnixNano(), key, limit, n)
}

func (m *Memory) allow(t int64, key string, limit Limit, n int) Result {
	h := maphash.String(m.seed, key)
	s := m.shard(h)
	s.mu.Lock()
	e := s.tats[h]
	var tat int64
	if e != nil {
		tat = e.tat
	}
	newTAT, r := gcra(tat, t, limit, n)
	if r.Allowed && newTAT > t {
		m.store(s, e, h, t, newTAT)
	}
	s.mu.Unlock()
	return r
}

func (m *Memory) shard(h uint64) *memoryShard { return &m.shards[(h>>32)&m.mask] }

// store sets the theoretical arrival time of the key of hash h, whose
// entry is e (nil when the key is not held), at time t. The shard s is
// locked.
func (m *Memory) store(s *memoryShard, e *memoryEntry, h uint64, t, tat int64) {
	if e == nil {
		if len(s.tats) >= m.perShard {
			evict(s, t)
		}
		e = new(memoryEntry)
		s.tats[h] = e
	}
	e.tat = tat
}

// evict makes room in a full shard: it samples a few keys and forgets those
// whose budget is back in full, or else the one closest to it. Forgetting a
// key that is still limited gives it its full burst again; keys are only
// evicted when more clients than WithMaxKeys are active at once.
func evict(s *memoryShard, now int64) {
	var (
		victim   uint64
		victimAt int64
		sampled  int
		idle     bool
	)
	for key, e := range s.tats {
		if e.tat <= now {
			delete(s.tats, key)
			idle = true
		} else if sampled == 0 || e.tat < victimAt {
			victim, victimAt = key, e.tat
		}
		if sampled++; sampled == evictionSample {
			break
		}
	}
	if !idle && sampled > 0 {
		delete(s.tats, victim)
		s.evictions++
	}
}

// Len returns the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

// Evictions returns how many keys were forgotten before their budget was
// back in full, to make room for others.
func (m *Memory) Evictions() uint64 {
	var n uint64
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.evictions
		s.mu.Unlock()
	}
	return n
}

// Close stops the cleanup goroutine. The store remains usable, holding
// keys until evicted.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		m.stop()
		<-m.done
	})
	return nil
}

func (m *Memory) cleanup(ctx context.Context, every time.Duration) {
	defer close(m.done)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			m.sweep()
		}
	}
}

// sweep forgets every key whose budget is back in full, one shard at a
// time.
func (m *Memory) sweep() {
	for i := range m.shards {
		s := &m.shards[i]
		now := m.now()
		s.mu.Lock()
		for key, e := range s.tats {
			if e.tat <= now {
				delete(s.tats, key)
			}
		}
		s.mu.Unlock()
	}
}

// unixNanoClock returns a clock of Unix nanoseconds: now's, or by default
// the process's monotonic clock anchored once to the wall clock, which
// reads one clock instead of time.Now's two and never jumps.
func unixNanoClock(now func() time.Time) func() int64 {
	if now != nil {
		return func() int64 { return now().UnixNano() }
	}
	start := time.Now()
	base := start.UnixNano()
	return func() int64 { return base + int64(time.Since(start)) }
}
