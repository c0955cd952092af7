package token

import (
	"hash/maphash"
	"sync"
	"time"
)

// verified is a cached verification: the token, its principal, until when
// it may be reused, and the key that verified it.
type verified struct {
	raw       string
	principal *Principal
	until     int64 // unix nanoseconds
	key       *verifyKey
}

// tokenCache remembers verified tokens by a keyed hash of the token, so a
// repeat caller costs a hash and a map lookup. Only verified tokens enter
// it, at most max of them; an entry serves while its token is valid and its
// key is in its issuer's key set, and only for the very same token: the
// stored token is compared in full, so a hash collision cannot mix two.
type tokenCache struct {
	seed    maphash.Seed
	max     int
	mu      sync.RWMutex
	entries map[uint64]*verified
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{seed: maphash.MakeSeed(), max: size, entries: make(map[uint64]*verified)}
}

// get returns the principal of raw if it was verified and still holds at
// now. It does not allocate.
func (c *tokenCache) get(raw string, now time.Time) (*Principal, bool) {
	if c == nil {
		return nil, false
	}
	h := maphash.String(c.seed, raw)
	c.mu.RLock()
	e := c.entries[h]
	c.mu.RUnlock()
	if e == nil || e.raw != raw || now.UnixNano() >= e.until || !e.key.alive.Load() {
		return nil, false
	}
	return e.principal, true
}

// put remembers a verified token. When the cache is full it first drops
// what no longer serves, then arbitrary entries.
func (c *tokenCache) put(e *verified, now time.Time) {
	if c == nil {
		return
	}
	h := maphash.String(c.seed, e.raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.max {
		c.evict(now.UnixNano())
	}
	c.entries[h] = e
}

// evict removes stale entries and, if that is not enough, about a
// sixteenth of the rest (map iteration order is random).
func (c *tokenCache) evict(now int64) {
	for h, e := range c.entries {
		if now >= e.until || !e.key.alive.Load() {
			delete(c.entries, h)
		}
	}
	if len(c.entries) < c.max {
		return
	}
	excess := len(c.entries) - c.max + 1 + c.max/16
	for h := range c.entries {
		if excess <= 0 {
			break
		}
		delete(c.entries, h)
		excess--
	}
}

// len returns the number of entries.
func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
