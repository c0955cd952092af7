package internaltoken_test

import (
	"strconv"
	"testing"

	"github.com/portcullis/portcullis/gateway/internaltoken"
)

// BenchmarkAuthorizationCached is a hot caller's cost: a cache hit.
func BenchmarkAuthorizationCached(b *testing.B) {
	c := &clock{}
	c.unix.Store(1_800_000_000)
	m := newMinter(b, c)
	p := caller(c)
	if _, err := m.Authorization(p, "Bearer a", "licensing"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Authorization(p, "Bearer a", "licensing"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizationFresh is a new caller token's cost: a signature.
func BenchmarkAuthorizationFresh(b *testing.B) {
	c := &clock{}
	c.unix.Store(1_800_000_000)
	m := newMinter(b, c, internaltoken.WithCacheSize(0))
	p := caller(c)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := m.Authorization(p, "Bearer "+strconv.Itoa(i), "licensing"); err != nil {
			b.Fatal(err)
		}
	}
}
