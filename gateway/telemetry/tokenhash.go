package telemetry

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"
	"sync"
)

// tokenHashLen is how many bytes of the HMAC a token_hash shows, in hex:
// 64 bits tell a gateway's tokens apart, and say nothing of them.
const tokenHashLen = 8

// maxPooledToken bounds the buffer a pooled hasher keeps for tokens.
const maxPooledToken = 8 << 10

// tokenHasher computes the token_hash of access lines: HMAC-SHA256 of the
// bearer token under the process's key (or the fleet's), truncated. A JWT's
// first characters, which are its encoded header, are the same for every
// token of an issuer; a hash tells tokens apart, and without the key it
// cannot even be checked against a token.
type tokenHasher struct {
	pool sync.Pool // of *tokenMAC
}

// tokenMAC is an HMAC with the buffers of one hashing.
type tokenMAC struct {
	mac hash.Hash
	tok []byte
	sum [sha256.Size]byte
}

func newTokenHasher(key []byte) *tokenHasher {
	th := new(tokenHasher)
	th.pool.New = func() any { return &tokenMAC{mac: hmac.New(sha256.New, key)} }
	return th
}

// hash returns the token_hash of tok: 16 hex digits.
func (th *tokenHasher) hash(tok string) string {
	m := th.pool.Get().(*tokenMAC)
	m.mac.Reset()
	m.tok = append(m.tok[:0], tok...)
	m.mac.Write(m.tok)
	sum := m.mac.Sum(m.sum[:0])
	var out [2 * tokenHashLen]byte
	hex.Encode(out[:], sum[:tokenHashLen])
	if cap(m.tok) > maxPooledToken {
		m.tok = nil
	}
	th.pool.Put(m)
	return string(out[:])
}

// bearerToken returns the bearer token in header, or "".
func bearerToken(header http.Header) string {
	v := header.Get("Authorization")
	const scheme = "Bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimLeft(v[len(scheme):], " ")
}
