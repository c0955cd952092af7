package revocation

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// shards splits the token table so that readers on many cores do not
// share one lock word, and a sweep holds each lock briefly.
const shards = 64

// tokenTable holds revoked tokens: a keyed 64-bit hash of issuer and
// token id → expiry in seconds since 1970. Keeping the hash rather than
// the strings bounds an entry at a map slot, whatever the lengths; two
// different tokens sharing a hash can only make the second one refused,
// never accepted, with a probability of about n/2^64 per token for n
// entries, and the seed is random per process.
type tokenTable struct {
	seed  maphash.Seed
	count atomic.Int64
	shard [shards]tokenShard
}

type tokenShard struct {
	mu   sync.RWMutex
	m    map[uint64]int64
	peak int // the largest len(m) since m was made
	_    [24]byte
}

func newTokenTable() *tokenTable {
	t := &tokenTable{seed: maphash.MakeSeed()}
	for i := range t.shard {
		t.shard[i].m = make(map[uint64]int64)
	}
	return t
}

// hash returns the key of a token. It does not allocate.
func (t *tokenTable) hash(issuer, tokenID string) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(issuer)))
	h.Write(n[:]) // length-prefixed: "a"+"bc" and "ab"+"c" differ
	h.WriteString(issuer)
	h.WriteString(tokenID)
	return h.Sum64()
}

// has reports whether the token of hash h is revoked.
func (t *tokenTable) has(h uint64) bool {
	s := &t.shard[h%shards]
	s.mu.RLock()
	_, ok := s.m[h]
	s.mu.RUnlock()
	return ok
}

// add records a revoked token until exp, keeping the later expiry of a
// token revoked twice. It reports whether the token is new.
func (t *tokenTable) add(h uint64, exp int64) bool {
	s := &t.shard[h%shards]
	s.mu.Lock()
	old, ok := s.m[h]
	if !ok || exp > old {
		s.m[h] = exp
	}
	s.peak = max(s.peak, len(s.m))
	s.mu.Unlock()
	if !ok {
		t.count.Add(1)
	}
	return !ok
}

// sweep drops the entries expired at now (seconds) and returns how many
// it dropped. A shard that has shrunk to a quarter of its peak is copied
// into a new map: Go maps do not give memory back as they empty.
func (t *tokenTable) sweep(now int64) int {
	dropped := 0
	for i := range t.shard {
		s := &t.shard[i]
		s.mu.Lock()
		for h, exp := range s.m {
			if exp <= now {
				delete(s.m, h)
				dropped++
			}
		}
		if s.peak >= 1024 && len(s.m) <= s.peak/4 {
			m := make(map[uint64]int64, len(s.m))
			for h, exp := range s.m {
				m[h] = exp
			}
			s.m, s.peak = m, len(m)
		}
		s.mu.Unlock()
	}
	t.count.Add(int64(-dropped))
	return dropped
}

// clientKey names a client of an issuer.
type clientKey struct{ issuer, client string }

// clientEntry revokes the tokens of a client issued before before, until
// exp; both in seconds since 1970.
type clientEntry struct{ before, exp int64 }

// clientTable holds client revocations: few, read on every call, so the
// map is replaced whole on each change and read without a lock.
type clientTable struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[clientKey]clientEntry]
}

// revoked reports whether the token of client issued at iat (seconds; 0
// for a token without iat) is revoked. It does not allocate.
func (t *clientTable) revoked(issuer, client string, iat int64, hasIAT bool) bool {
	m := t.m.Load()
	if m == nil {
		return false
	}
	e, ok := (*m)[clientKey{issuer, client}]
	return ok && (!hasIAT || iat < e.before)
}

// add records a client revocation, keeping the later time and expiry of
// two for one client. It reports whether the table changed.
func (t *clientTable) add(k clientKey, e clientEntry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old map[clientKey]clientEntry
	if p := t.m.Load(); p != nil {
		old = *p
	}
	prev, ok := old[k]
	if ok && prev.before >= e.before && prev.exp >= e.exp {
		return false
	}
	if ok {
		e = clientEntry{before: max(prev.before, e.before), exp: max(prev.exp, e.exp)}
	}
	m := make(map[clientKey]clientEntry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[k] = e
	t.m.Store(&m)
	return true
}

// sweep drops the client revocations expired at now and returns how many
// it dropped.
func (t *clientTable) sweep(now int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.m.Load()
	if p == nil {
		return 0
	}
	m := make(map[clientKey]clientEntry, len(*p))
	for k, e := range *p {
		if e.exp > now {
			m[k] = e
		}
	}
	dropped := len(*p) - len(m)
	if dropped == 0 {
		return 0
	}
	if len(m) == 0 {
		t.m.Store(nil)
	} else {
		t.m.Store(&m)
	}
	return dropped
}

// len returns the number of client revocations.
func (t *clientTable) len() int {
	if p := t.m.Load(); p != nil {
		return len(*p)
	}
	return 0
}
