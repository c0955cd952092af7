package internaltoken

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
)

// DefaultLifetime is an internal token's lifetime unless [WithLifetime]
// says otherwise.
const DefaultLifetime = time.Minute

// DefaultCacheSize bounds the minted tokens kept unless [WithCacheSize]
// says otherwise.
const DefaultCacheSize = 10000

// A Minter mints and caches internal tokens. It is safe for concurrent use.
type Minter struct {
	issuer   string
	key      *ecdsa.PrivateKey
	header   string // base64url of the JOSE header, and the dot after it
	jwks     []byte
	lifetime time.Duration
	now      func() time.Time
	max      int
	mints    atomic.Uint64

	mu    sync.RWMutex
	cache map[cacheKey]entry
}

type cacheKey struct{ token, audience string }

type entry struct {
	value     string // "Bearer " and the token
	refreshAt time.Time
}

// An Option configures [New].
type Option interface{ apply(*Minter) error }

type optionFunc func(*Minter) error

func (f optionFunc) apply(m *Minter) error { return f(m) }

// WithLifetime sets how long an internal token is valid, at most: it never
// outlives the caller's token. Default [DefaultLifetime].
func WithLifetime(d time.Duration) Option {
	return optionFunc(func(m *Minter) error {
		if d < time.Second {
			return fmt.Errorf("WithLifetime(%v): must be at least 1s", d)
		}
		m.lifetime = d
		return nil
	})
}

// WithClock sets the clock tokens are dated by and the cache is aged by.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(m *Minter) error {
		if now == nil {
			return errors.New("WithClock(nil)")
		}
		m.now = now
		return nil
	})
}

// WithCacheSize bounds the number of minted tokens kept. Default
// [DefaultCacheSize]; 0 keeps none (every call mints).
func WithCacheSize(n int) Option {
	return optionFunc(func(m *Minter) error {
		if n < 0 {
			return fmt.Errorf("WithCacheSize(%d): must not be negative", n)
		}
		m.max = n
		return nil
	})
}

// New returns a Minter that signs, as issuer (an absolute URL), with key,
// a P-256 key (see [LoadOrGenerateKey]).
func New(issuer string, key *ecdsa.PrivateKey, opts ...Option) (*Minter, error) {
	if u, err := url.Parse(issuer); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("internal token issuer %q: not an absolute URL", issuer)
	}
	if key == nil {
		return nil, errors.New("internal token key: nil")
	}
	jwk, err := publicJWK(key)
	if err != nil {
		return nil, fmt.Errorf("internal token key: %w", err)
	}
	m := &Minter{issuer: issuer, key: key, lifetime: DefaultLifetime, now: time.Now, max: DefaultCacheSize, cache: make(map[cacheKey]entry)}
	var errs []error
	for _, o := range opts {
		if err := o.apply(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "at+jwt", "kid": jwk["kid"]})
	m.header = base64.RawURLEncoding.EncodeToString(h) + "."
	if m.jwks, err = keySet(jwk); err != nil {
		return nil, err
	}
	return m, nil
}

// Issuer returns the iss of the tokens the Minter mints.
func (m *Minter) Issuer() string { return m.issuer }

// Mints returns how many tokens were signed so far: calls answered from
// the cache do not count.
func (m *Minter) Mints() uint64 { return m.mints.Load() }

// JWKS returns the key set (RFC 7517) backends verify internal tokens with.
func (m *Minter) JWKS() []byte { return m.jwks }

// JWKSHandler serves [Minter.JWKS], as the gateway's admin listener does
// at /.well-known/jwks.json.
func (m *Minter) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(m.jwks)
	})
}

// Authorization returns the Authorization header value, "Bearer " and an
// internal token, for a call of caller p, who presented callerToken (the
// cache key: the caller's own Authorization value will do), to a backend
// whose audience is audience. A token minted for the same caller token and
// audience is served again until a quarter of its life is left.
func (m *Minter) Authorization(p *token.Principal, callerToken, audience string) (string, error) {
	now := m.now()
	k := cacheKey{callerToken, audience}
	m.mu.RLock()
	e, ok := m.cache[k]
	m.mu.RUnlock()
	if ok && callerToken != "" && now.Before(e.refreshAt) {
		return e.value, nil
	}
	tok, exp, err := m.mint(p, audience, now)
	if err != nil {
		return "", err
	}
	e = entry{value: "Bearer " + tok, refreshAt: exp.Add(-exp.Sub(now) / 4)}
	if m.max > 0 && callerToken != "" {
		m.mu.Lock()
		if len(m.cache) >= m.max {
			m.evict(now)
		}
		m.cache[k] = e
		m.mu.Unlock()
	}
	return e.value, nil
}

// evict drops the entries due for refresh, or all when none is: a full
// cache of live entries is rare, and refilling it is cheap next to
// tracking recency on every hit.
func (m *Minter) evict(now time.Time) {
	for k, e := range m.cache {
		if !now.Before(e.refreshAt) {
			delete(m.cache, k)
		}
	}
	if len(m.cache) >= m.max {
		clear(m.cache)
	}
}

type claims struct {
	Issuer   string            `json:"iss"`
	Audience string            `json:"aud"`
	Subject  string            `json:"sub,omitempty"`
	ClientID string            `json:"client_id,omitempty"`
	Tier     string            `json:"tier,omitempty"`
	Perms    map[string]uint64 `json:"perms"`
	IssuedAt int64             `json:"iat"`
	Expiry   int64             `json:"exp"`
	ID       string            `json:"jti"`
	OrigID   string            `json:"orig_jti,omitempty"`
	OrigIss  string            `json:"orig_iss,omitempty"`
}

func (m *Minter) mint(p *token.Principal, audience string, now time.Time) (string, time.Time, error) {
	exp := now.Add(m.lifetime)
	if !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(exp) {
		exp = p.ExpiresAt
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	perms := p.Masks
	if perms == nil {
		perms = map[string]uint64{}
	}
	payload, err := json.Marshal(claims{
		Issuer: m.issuer, Audience: audience, Subject: p.Subject, ClientID: p.ClientID, Tier: p.Tier,
		Perms: perms, IssuedAt: now.Unix(), Expiry: exp.Unix(),
		ID: base64.RawURLEncoding.EncodeToString(id[:]), OrigID: p.TokenID, OrigIss: p.Issuer,
	})
	if err != nil {
		return "", time.Time{}, err
	}
	signing := m.header + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, m.key, sum[:])
	if err != nil {
		return "", time.Time{}, err
	}
	var sig [64]byte // RFC 7518 §3.4: R and S, 32 bytes each, big-endian
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	m.mints.Add(1)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig[:]), exp, nil
}
