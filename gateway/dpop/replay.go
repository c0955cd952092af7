package dpop

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReplayStore remembers the proofs seen, so that each is accepted once
// (RFC 9449 §11.1). Keys are SHA-256 hashes of the proof's jti and key
// thumbprint: never a proof or a token.
type ReplayStore interface {
	// Remember records key for ttl and reports whether it was new. An
	// error means the answer is unknown: the proof is refused.
	Remember(ctx context.Context, key [32]byte, ttl time.Duration) (bool, error)
}

// errFull is the memory store's refusal of a key past its capacity.
var errFull = errors.New("dpop: replay cache full")

const shards = 64

// Memory is a [ReplayStore] in the process's memory: sharded, bounded,
// entries dropped once expired. Replicas do not share it; see [Redis].
type Memory struct {
	perShard int
	now      func() time.Time
	shards   [shards]shard
}

type shard struct {
	mu        sync.Mutex
	seen      map[[32]byte]int64 // expiry, Unix nanoseconds
	nextSweep int64
}

// NewMemory returns a memory store holding at most maxEntries proofs at
// once (at least 64). Past that, until some expire, new proofs are
// refused: forgetting a proof before it expires would let it be replayed.
func NewMemory(maxEntries int) *Memory {
	m := &Memory{perShard: max(maxEntries/shards, 1), now: time.Now}
	for i := range m.shards {
		m.shards[i].seen = make(map[[32]byte]int64)
	}
	return m
}

// Remember implements [ReplayStore].
func (m *Memory) Remember(_ context.Context, key [32]byte, ttl time.Duration) (bool, error) {
	now := m.now().UnixNano()
	s := &m.shards[key[0]%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[key]; ok && exp > now {
		return false, nil
	}
	if now >= s.nextSweep || len(s.seen) >= m.perShard {
		for k, exp := range s.seen {
			if exp <= now {
				delete(s.seen, k)
			}
		}
		s.nextSweep = now + int64(ttl)
	}
	if len(s.seen) >= m.perShard {
		return false, errFull
	}
	s.seen[key] = now + int64(ttl)
	return true, nil
}

// Len returns the number of proofs remembered, expired ones not yet
// dropped included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}

// RedisClient is what [Redis] needs of a go-redis client: a
// *redis.Client, *redis.ClusterClient and *redis.Ring all fit.
type RedisClient interface {
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
}

// Redis is a [ReplayStore] in Redis, shared by every replica: SET key NX
// PX ttl, so that of two replicas shown the same proof only one accepts
// it.
type Redis struct {
	client  RedisClient
	prefix  string
	timeout time.Duration
}

// NewRedis returns a store keeping its keys under prefix, each round trip
// bounded by timeout (none when zero or less).
func NewRedis(client RedisClient, prefix string, timeout time.Duration) (*Redis, error) {
	if client == nil {
		return nil, errors.New("dpop: nil Redis client")
	}
	return &Redis{client: client, prefix: prefix, timeout: timeout}, nil
}

// Remember implements [ReplayStore].
func (r *Redis) Remember(ctx context.Context, key [32]byte, ttl time.Duration) (bool, error) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	var buf [64]byte
	k := append(buf[:0], r.prefix...)
	k = base64.RawURLEncoding.AppendEncode(k, key[:])
	return r.client.SetNX(ctx, string(k), 1, ttl).Result()
}
