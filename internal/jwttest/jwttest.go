// Package jwttest holds what token tests share: keys that sign JWTs
// (crafted ones included), an issuer's key server on a real local HTTP
// server, and a settable clock.
//
//	k := jwttest.NewEC("k1")
//	p := jwttest.NewIdP(t, k)
//	raw := k.Mint(nil, jwttest.ClaimsAt(p.Issuer, "https://api.test", jwttest.Epoch))
package jwttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // for crypto.SHA256
	_ "crypto/sha512" // for crypto.SHA384 and SHA512
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Signer is a test key that signs tokens.
type Signer struct {
	KID  string        // the key ID put in headers and key sets; empty for none
	Alg  string        // the JWS algorithm the key signs with
	Priv crypto.Signer // the private key; nil for HMAC
	MAC  []byte        // the HMAC secret; nil for others
}

// rsaKeys are generated once: 2048-bit keys are slow to make.
var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

// NewRSA returns an RS256 signer with key ID kid, using the i-th (0 to 2) of
// the RSA keys shared by all tests.
func NewRSA(kid string, i int) *Signer {
	return &Signer{KID: kid, Alg: "RS256", Priv: rsaKeys()[i]}
}

// NewEC returns an ES256 signer with key ID kid and a new P-256 key.
func NewEC(kid string) *Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Signer{KID: kid, Alg: "ES256", Priv: k}
}

// NewEd returns an EdDSA signer with key ID kid and a new Ed25519 key.
func NewEd(kid string) *Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Signer{KID: kid, Alg: "EdDSA", Priv: k}
}

// NewHMAC returns an HS256 signer of the shared secret, with no key ID.
func NewHMAC(secret []byte) *Signer { return &Signer{Alg: "HS256", MAC: secret} }

// B64 returns b in unpadded base64url, as JWS segments are.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// MustJSON returns v as JSON, and panics if it cannot.
func MustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Sign signs input with s, as JWS algorithm alg (any of RS*, PS*, ES*,
// HS* with SHA-256, -384 or -512, EdDSA, or none for no signature),
// whatever s.Alg is.
func (s *Signer) Sign(alg, input string) []byte {
	if alg == "none" {
		return nil
	}
	if alg == "EdDSA" {
		return ed25519.Sign(s.Priv.(ed25519.PrivateKey), []byte(input))
	}
	var h crypto.Hash
	if len(alg) == 5 {
		h = map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}[alg[2:]]
	}
	if h == 0 {
		panic("unknown alg " + alg)
	}
	if alg[:2] == "HS" {
		m := hmac.New(h.New, s.MAC)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	d := h.New()
	d.Write([]byte(input))
	digest := d.Sum(nil)
	var (
		sig []byte
		err error
	)
	switch alg[:2] {
	case "RS":
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.Priv.(*rsa.PrivateKey), h, digest)
	case "PS":
		sig, err = rsa.SignPSS(rand.Reader, s.Priv.(*rsa.PrivateKey), h, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES":
		// R and S, each as long as the curve's order (RFC 7518 §3.4).
		k := s.Priv.(*ecdsa.PrivateKey)
		var r, ss *big.Int
		if r, ss, err = ecdsa.Sign(rand.Reader, k, digest); err == nil {
			n := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*n)
			r.FillBytes(sig[:n])
			ss.FillBytes(sig[n:])
		}
	default:
		panic("unknown alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// Mint returns a token with the given header and claims, signed by s.
// Header values override the defaults: alg s.Alg, kid s.KID (none when
// empty) and typ at+jwt, as access tokens are typed (RFC 9068); a nil
// value removes one. The token is signed with the resulting header's alg.
func (s *Signer) Mint(header, claims map[string]any) string {
	h := map[string]any{"alg": s.Alg, "typ": "at+jwt"}
	if s.KID != "" {
		h["kid"] = s.KID
	}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	alg, _ := h["alg"].(string)
	input := B64(MustJSON(h)) + "." + B64(MustJSON(claims))
	return input + "." + B64(s.Sign(alg, input))
}

// MintRaw returns a token of the given header and claims JSON, as they
// are, signed by s with s.Alg: the header's own alg, which may be
// malformed or given twice, is not read.
func (s *Signer) MintRaw(header, claims string) string {
	input := B64([]byte(header)) + "." + B64([]byte(claims))
	return input + "." + B64(s.Sign(s.Alg, input))
}

// JWKS returns the public key set of signers, each key with its key ID,
// algorithm and use "sig". The signers must not be HMAC ones.
func JWKS(signers ...*Signer) []byte {
	set := jwk.NewSet()
	for _, s := range signers {
		k, err := jwk.FromRaw(s.Priv.Public())
		if err != nil {
			panic(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.KID)
		_ = k.Set(jwk.AlgorithmKey, s.Alg)
		_ = k.Set(jwk.KeyUsageKey, "sig")
		_ = set.AddKey(k)
	}
	return MustJSON(set)
}

// IdP is an issuer's key server on a real local HTTP/2-capable server: it
// serves a key set at /jwks.json that tests rotate, and its metadata at
// /.well-known/openid-configuration; it counts the fetches, and can be
// taken down.
type IdP struct {
	*httptest.Server
	Keys          atomic.Pointer[[]byte] // the key set served, as is
	Hits          atomic.Int64           // key set requests, answered or not
	Down          atomic.Bool            // when true, key set requests get 503
	Issuer        string                 // the issuer named in the metadata; the server's URL
	MetadataHits  atomic.Int64           // metadata requests
	MetadataPaths sync.Map               // the paths metadata was requested at (string → true)

	gate   chan struct{} // when set, fetches wait for it to close
	gateMu sync.Mutex
}

// NewIdP starts a key server serving the key set of signers, closed when
// t ends.
func NewIdP(t testing.TB, signers ...*Signer) *IdP {
	t.Helper()
	p := &IdP{}
	p.SetKeys(signers...)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		p.gateMu.Lock()
		gate := p.gate
		p.gateMu.Unlock()
		if gate != nil {
			<-gate
		}
		p.Hits.Add(1)
		if p.Down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*p.Keys.Load())
	})
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.MetadataHits.Add(1)
		p.MetadataPaths.Store(r.URL.Path, true)
		_, _ = w.Write(MustJSON(map[string]string{"issuer": p.Issuer, "jwks_uri": p.URL + "/jwks.json"}))
	})
	p.Server = httptest.NewUnstartedServer(mux)
	p.Server.EnableHTTP2 = true
	p.Start()
	p.Issuer = p.URL
	t.Cleanup(p.Close)
	return p
}

// SetKeys makes p serve the key set of signers.
func (p *IdP) SetKeys(signers ...*Signer) {
	b := JWKS(signers...)
	p.Keys.Store(&b)
}

// Hold makes key set fetches wait until the returned function is called.
func (p *IdP) Hold() (release func()) {
	ch := make(chan struct{})
	p.gateMu.Lock()
	p.gate = ch
	p.gateMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.gateMu.Lock()
			p.gate = nil
			p.gateMu.Unlock()
			close(ch)
		})
	}
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct{ now atomic.Int64 }

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the time c is set to.
func (c *Clock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// Set sets c to t.
func (c *Clock) Set(t time.Time) { c.now.Store(t.UnixNano()) }

// Advance moves c on by d.
func (c *Clock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// Epoch is the time tests run at.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ClaimsAt returns valid claims for issuer iss and audience aud at t: they
// expire 10 minutes after t and grant LIC 3 and ORD 1.
func ClaimsAt(iss, aud string, t time.Time) map[string]any {
	return map[string]any{
		"iss": iss, "sub": "svc-billing", "aud": aud, "client_id": "billing",
		"iat": t.Unix(), "exp": t.Add(10 * time.Minute).Unix(), "jti": "id-1",
		"perms": map[string]any{"LIC": 3, "ORD": 1}, "tier": "pro", "scope": "orders",
	}
}
