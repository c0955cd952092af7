package issuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"sync"
	"time"
)

// verifyCache remembers, for a short while, that a client id and secret
// matched a stored hash.
//
// Why: argon2id is deliberately slow (tens of milliseconds of CPU and 19 MiB
// per verification with the default parameters). A client that fetches a
// token every few minutes, or a fleet of replicas of one client starting at
// once, would otherwise spend that on every request, and so would the
// issuer. Why it is safe:
//   - an entry is keyed by HMAC-SHA256(per-process random key, id, secret):
//     the cache holds neither secrets nor hashes that could be attacked
//     offline, and its key dies with the process;
//   - a hit needs the exact id and secret that verified, so it tells a
//     caller nothing it did not know;
//   - an entry records the stored hash it was verified against, and only
//     hits while that client still has that hash: revoking a client or
//     changing its secret invalidates it at the next registry reload;
//   - it is bounded in size and time.
type verifyCache struct {
	ttl  time.Duration
	macs sync.Pool // of hash.Hash: HMAC-SHA256 keyed with a random key
	mu   sync.Mutex
	seen map[[32]byte]cacheEntry
}

type cacheEntry struct {
	hash    string // the stored hash the secret matched
	expires time.Time
}

func newVerifyCache(ttl time.Duration) *verifyCache {
	if ttl <= 0 {
		return nil
	}
	c := &verifyCache{ttl: ttl, seen: make(map[[32]byte]cacheEntry)}
	key := make([]byte, 32)
	rand.Read(key) // never fails
	c.macs.New = func() any { return hmac.New(sha256.New, key) }
	return c
}

// fingerprint returns the cache key of a client id and secret.
func (c *verifyCache) fingerprint(id, secret string) [32]byte {
	var out [32]byte
	if c == nil {
		return out
	}
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(id)))
	m.Write(n[:]) // length-prefixed, so that id and secret cannot run into each other
	io.WriteString(m, id)
	io.WriteString(m, secret)
	m.Sum(out[:0])
	c.macs.Put(m)
	return out
}

// hit reports whether the id and secret with fingerprint fp were verified
// against hash within the TTL.
func (c *verifyCache) hit(fp [32]byte, hash string, now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	e, ok := c.seen[fp]
	c.mu.Unlock()
	return ok && e.hash == hash && now.Before(e.expires)
}

// add remembers that fingerprint fp verified against hash.
func (c *verifyCache) add(fp [32]byte, hash string, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[fp]; !ok && len(c.seen) >= cacheSize {
		for k, e := range c.seen {
			if !now.Before(e.expires) {
				delete(c.seen, k)
			}
		}
		for k := range c.seen {
			if len(c.seen) < cacheSize {
				break
			}
			delete(c.seen, k) // an arbitrary entry: its client just hashes again
		}
	}
	c.seen[fp] = cacheEntry{hash: hash, expires: now.Add(c.ttl)}
}
