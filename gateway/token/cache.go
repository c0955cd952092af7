package token

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// verified is a cached verification: the token, its principal, until when
// it may be reused, and how its key was chosen, to check that the current
// key set still chooses it.
type verified struct {
	raw       string
	principal *Principal
	until     int64 // unix nanoseconds
	is        *issuer
	key       *verifyKey // the key that verified the signature
	alg       alg        // the token's algorithm
	hasKid    bool       // whether the token named its key (key.kid)
	// index is the key set key was last chosen from.
	index atomic.Pointer[keyIndex]
}

// current reports whether the issuer's current key set chooses the key
// that verified e, as it would for a fresh verification of the token: a
// key that left the key set, a kid now naming another key first, or a
// kid-less token whose algorithm has gained a second key all make it
// false. It costs an atomic load while the key set is the one e was
// verified with, and a key lookup once after each change; it does not
// allocate.
func (e *verified) current() bool {
	ix := e.is.keys.Load()
	if ix == e.index.Load() {
		return true
	}
	var kid []byte
	if e.hasKid {
		kid = bytesOf(e.key.kid)
	}
	if k, err := e.is.pick(ix, kid, e.hasKid, e.alg); err != nil || k != e.key {
		return false
	}
	e.index.Store(ix)
	return true
}

// tokenCache remembers verified tokens by a keyed hash of the token, so a
// repeat caller costs a hash and a map lookup. Only verified tokens enter
// it, at most max of them; an entry serves while its token is valid and
// its issuer's key set chooses the key that verified it, and only for the
// very same token: the stored token is compared in full, so a hash
// collision cannot mix two.
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
	if e == nil || e.raw != raw || now.UnixNano() >= e.until || !e.current() {
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
		if now >= e.until || !e.current() {
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
