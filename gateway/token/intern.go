package token

import "sync"

// maxInterned bounds each intern table: tokens come from a bounded set of
// clients, and past the bound values are simply not shared.
const maxInterned = 4096

// interned shares the values that recur across tokens: the strings of
// subjects, client ids and tiers, and the masks of a perms claim, so that
// verifying a new token of a known client allocates little. Values handed
// out are shared and must not be modified; a Principal is immutable.
type interned[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// lookup returns the value of key. It does not allocate.
func (t *interned[V]) lookup(key []byte) (V, bool) {
	t.mu.RLock()
	v, ok := t.m[string(key)]
	t.mu.RUnlock()
	return v, ok
}

// store remembers the value of key, unless the table is full.
func (t *interned[V]) store(key string, v V) {
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]V)
	}
	if len(t.m) < maxInterned {
		t.m[key] = v
	}
	t.mu.Unlock()
}
