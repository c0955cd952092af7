package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Nonces issues and checks server nonces (RFC 9449 §8) without state: a
// nonce is a time period's number with its HMAC under a secret key, valid
// in its period and the next. Replicas sharing the key accept each
// other's nonces.
type Nonces struct {
	key    []byte
	period time.Duration
}

// minNonceKey is the least key length: a SHA-256 HMAC's own.
const minNonceKey = 32

// nonceLen is the length of a nonce: base64url of 8 bytes of period and
// 16 of HMAC.
const nonceLen = 32

// NewNonces returns nonces under key (at least 32 bytes) that change
// every period (at least a second).
func NewNonces(key []byte, period time.Duration) (*Nonces, error) {
	if len(key) < minNonceKey {
		return nil, errors.New("dpop: nonce key shorter than 32 bytes")
	}
	if period < time.Second {
		return nil, errors.New("dpop: nonce period shorter than a second")
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}, nil
}

// Nonce returns the nonce of the period of t.
func (n *Nonces) Nonce(t time.Time) string {
	var raw [24]byte
	n.make(&raw, uint64(t.UnixNano()/int64(n.period)))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (n *Nonces) make(raw *[24]byte, number uint64) {
	binary.BigEndian.PutUint64(raw[:8], number)
	mac := hmac.New(sha256.New, n.key)
	mac.Write(raw[:8])
	var sum [sha256.Size]byte
	copy(raw[8:], mac.Sum(sum[:0]))
}

// Valid reports whether nonce is one of the period of t or of the one
// before.
func (n *Nonces) Valid(nonce []byte, t time.Time) bool {
	var raw [24]byte
	if len(nonce) != nonceLen {
		return false
	}
	if k, err := base64.RawURLEncoding.Strict().Decode(raw[:], nonce); err != nil || k != len(raw) {
		return false
	}
	number := binary.BigEndian.Uint64(raw[:8])
	now := uint64(t.UnixNano() / int64(n.period))
	if number != now && number+1 != now {
		return false
	}
	var want [24]byte
	n.make(&want, number)
	return hmac.Equal(raw[8:], want[8:])
}
