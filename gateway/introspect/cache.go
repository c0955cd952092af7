package introspect

import (
	"hash/maphash"
	"sync"

	"github.com/portcullis/portcullis/gateway/token"
)

// answer is a cached introspection: the principal of an active token, or
// the refusal of an inactive one, until a time.
type answer struct {
	raw       string
	principal *token.Principal
	err       error
	until     int64 // unix nanoseconds
}

// cache holds answers by a keyed hash of the token, at most max of them;
// the stored token is compared in full, so a collision cannot mix two.
type cache struct {
	seed    maphash.Seed
	max     int
	mu      sync.RWMutex
	entries map[uint64]*answer
}

func newCache(max int) *cache {
	return &cache{seed: maphash.MakeSeed(), max: max, entries: make(map[uint64]*answer)}
}

// get returns the answer for raw that still holds at now. It does not
// allocate.
func (c *cache) get(raw string, now int64) (*answer, bool) {
	if c.max == 0 {
		return nil, false
	}
	h := maphash.String(c.seed, raw)
	c.mu.RLock()
	a := c.entries[h]
	c.mu.RUnlock()
	if a == nil || a.raw != raw || now >= a.until {
		return nil, false
	}
	return a, true
}

// put stores a, evicting expired answers when full, and arbitrary ones if
// none has expired.
func (c *cache) put(a *answer, now int64) {
	if c.max == 0 || a.until <= now {
		return
	}
	h := maphash.String(c.seed, a.raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if e.until <= now {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[h] = a
}

// len returns the number of answers held.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
