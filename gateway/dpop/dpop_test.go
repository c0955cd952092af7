package dpop_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/internal/dpoptest"
	"github.com/portcullis/portcullis/internal/redistest"
)

const (
	target = "https://api.example.com/pkg.v1.Service/Method"
	tok    = "header.claims.signature"
)

func newVerifier(t *testing.T, opts ...dpop.Option) *dpop.Verifier {
	t.Helper()
	v, err := dpop.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func headerWith(proofs ...string) http.Header {
	h := http.Header{}
	for _, p := range proofs {
		h.Add("DPoP", p)
	}
	return h
}

func request(k *dpoptest.Key) dpop.Request {
	return dpop.Request{Method: "POST", URL: target, AccessToken: tok, KeyThumbprint: k.Thumbprint}
}

// TestVerifyAccepts shows proofs of every default algorithm, signed by
// jwx, accepted, with the key's thumbprint as jwx computes it.
func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, dpop.WithAlgorithms(dpop.Algorithms()...))
	for _, alg := range dpop.Algorithms() {
		t.Run(alg, func(t *testing.T) {
			k := dpoptest.NewKey(t, alg)
			p, err := v.Verify(context.Background(), headerWith(k.Proof(t, "POST", target, tok)), request(k))
			if err != nil {
				t.Fatal(err)
			}
			if p.KeyThumbprint != k.Thumbprint || p.Algorithm != alg {
				t.Fatalf("proof %+v, want thumbprint %s", p, k.Thumbprint)
			}
		})
	}
}

// TestVerifyNormalizesURL shows htu compared after RFC 3986 normalization,
// and without query and fragment.
func TestVerifyNormalizesURL(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	k := dpoptest.NewKey(t, "ES256")
	for _, htu := range []string{
		"HTTPS://API.Example.COM:443/pkg.v1.Service/Method",
		"https://api.example.com/pkg.v1.Service/./x/../Method",
		"https://api.example.com/pkg.v1.Service/%4Dethod?q=1#f",
	} {
		if _, err := v.Verify(context.Background(), headerWith(k.Proof(t, "POST", htu, tok)), request(k)); err != nil {
			t.Errorf("htu %s: %v", htu, err)
		}
	}
	r := request(k)
	r.URL = "https://api.example.com:443/pkg.v1.Service/%4dethod"
	if _, err := v.Verify(context.Background(), headerWith(k.Proof(t, "POST", target, tok)), r); err != nil {
		t.Errorf("request URL not normalized: %v", err)
	}
}

// TestVerifyRefuses shows every refusal of RFC 9449 §4.3, each with its
// reason.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	k := dpoptest.NewKey(t, "ES256")
	other := dpoptest.NewKey(t, "ES256")
	now := time.Now()
	hs := func(input []byte) []byte {
		m := hmac.New(sha256.New, []byte("0123456789abcdef0123456789abcdef"))
		m.Write(input)
		return m.Sum(nil)
	}
	pub := func(k *dpoptest.Key) map[string]any {
		b, _ := jsonOf(k.PublicJWK)
		return b
	}
	priv, _ := jsonOf(k.PrivateJWK)
	cases := []struct {
		name   string
		header http.Header
		req    dpop.Request
		reason string
	}{
		{"missing", headerWith(), request(k), "missing DPoP proof"},
		{"two headers", headerWith(k.Proof(t, "POST", target, tok), k.Proof(t, "POST", target, tok)), request(k), "more than one DPoP header"},
		{"not a JWS", headerWith("abc"), request(k), "not a compact JWS"},
		{"wrong htm", headerWith(k.Proof(t, "GET", target, tok)), request(k), "htm does not match"},
		{"wrong htu", headerWith(k.Proof(t, "POST", "https://api.example.com/pkg.v1.Service/Other", tok)), request(k), "htu does not match"},
		{"htu of another host", headerWith(k.Proof(t, "POST", "https://evil.example.com/pkg.v1.Service/Method", tok)), request(k), "htu does not match"},
		{"old iat", headerWith(k.Proof(t, "POST", target, tok, dpoptest.At(now.Add(-2*time.Minute)))), request(k), "too old"},
		{"future iat", headerWith(k.Proof(t, "POST", target, tok, dpoptest.At(now.Add(time.Minute)))), request(k), "in the future"},
		{"no iat", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Claim("iat", nil))), request(k), "iat is missing"},
		{"no jti", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Claim("jti", nil))), request(k), "jti is missing"},
		{"long jti", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Claim("jti", strings.Repeat("j", 129)))), request(k), "too long"},
		{"wrong ath", headerWith(k.Proof(t, "POST", target, "another.token.here")), request(k), "ath does not match"},
		{"no ath", headerWith(k.Proof(t, "POST", target, "")), request(k), "has no ath"},
		{"ath without token", headerWith(k.Proof(t, "POST", target, tok)), dpop.Request{Method: "POST", URL: target}, "no access token came"},
		{"thumbprint mismatch", headerWith(other.Proof(t, "POST", target, tok)), request(k), "not the key the access token is bound to"},
		{"wrong typ", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Header("typ", "JWT"))), request(k), "typ"},
		{"crit", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Header("crit", []string{"exp"}))), request(k), "critical"},
		{"alg none", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": pub(k)}, dpoptest.Claims("POST", target, tok), nil)), request(k), "alg is not an accepted"},
		{"alg HS256", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": pub(k)}, dpoptest.Claims("POST", target, tok), hs)), request(k), "alg is not an accepted"},
		{"HS256 with an oct jwk", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}}, dpoptest.Claims("POST", target, tok), hs)), request(k), "alg is not an accepted"},
		{"private key in jwk", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Header(jws.JWKKey, k.PrivateJWK))), request(k), "private key material"},
		{"private key in jwk, raw", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": priv}, dpoptest.Claims("POST", target, tok), nil)), request(k), "private key material"},
		{"no jwk", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256"}, dpoptest.Claims("POST", target, tok), nil)), request(k), "no jwk"},
		{"alg of another key type", headerWith(dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": pub(k)}, dpoptest.Claims("POST", target, tok), nil)), request(k), "does not fit its jwk"},
		{"bad signature", headerWith(tamper(k.Proof(t, "POST", target, tok))), request(k), "signature does not verify"},
		{"too large", headerWith(k.Proof(t, "POST", target, tok, dpoptest.Claim("pad", strings.Repeat("x", 9000)))), request(k), "too large"},
		{"unknown request URL", headerWith(k.Proof(t, "POST", target, tok)), dpop.Request{Method: "POST", AccessToken: tok}, "request URL of the DPoP proof is unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(context.Background(), c.header, c.req)
			var de *dpop.Error
			if !errors.As(err, &de) || !errors.Is(err, dpop.ErrInvalidProof) || de.Code() != "invalid_dpop_proof" {
				t.Fatalf("err = %v, want an invalid_dpop_proof *dpop.Error", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("err = %q, want it to say %q", err, c.reason)
			}
		})
	}
}

// TestVerifyReplay shows a proof accepted once, in memory and in Redis
// shared by two verifiers, which stand for two replicas.
func TestVerifyReplay(t *testing.T) {
	t.Parallel()
	client, prefix := redistest.Shared(t)
	r1, err := dpop.NewRedis(client, prefix, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := dpop.NewRedis(client, prefix, time.Second)
	stores := map[string][2]dpop.ReplayStore{"memory": {dpop.NewMemory(1000), nil}, "redis": {r1, r2}}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			first := newVerifier(t, dpop.WithReplayStore(s[0]))
			second := first
			if s[1] != nil {
				second = newVerifier(t, dpop.WithReplayStore(s[1]))
			}
			k := dpoptest.NewKey(t, "ES256")
			proof := k.Proof(t, "POST", target, tok)
			if _, err := first.Verify(context.Background(), headerWith(proof), request(k)); err != nil {
				t.Fatal(err)
			}
			_, err := second.Verify(context.Background(), headerWith(proof), request(k))
			if !errors.Is(err, dpop.ErrInvalidProof) || !strings.Contains(err.Error(), "replayed") {
				t.Fatalf("replay: err = %v", err)
			}
			// The same jti with another key is another proof.
			k2 := dpoptest.NewKey(t, "ES256")
			if _, err := second.Verify(context.Background(), headerWith(k2.Proof(t, "POST", target, tok)), request(k2)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVerifyReplayStoreDown shows a proof refused, as unavailable, when
// Redis cannot be asked.
func TestVerifyReplayStoreDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redistest.Client(t, srv.Addr())
	store, _ := dpop.NewRedis(client, "dpop:", 200*time.Millisecond)
	v := newVerifier(t, dpop.WithReplayStore(store))
	srv.Stop()
	k := dpoptest.NewKey(t, "ES256")
	_, err := v.Verify(context.Background(), headerWith(k.Proof(t, "POST", target, tok)), request(k))
	if !errors.Is(err, dpop.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// TestMemoryBounded shows the memory store refusing past its capacity
// and taking new proofs again once old ones expire.
func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	m := dpop.NewMemory(64)
	ctx := context.Background()
	full := false
	for i := 0; i < 1000 && !full; i++ {
		var key [32]byte
		key[0], key[1], key[2] = byte(i), byte(i>>8), 7
		if _, err := m.Remember(ctx, key, 50*time.Millisecond); err != nil {
			full = true
		}
	}
	if !full || m.Len() > 64 {
		t.Fatalf("full = %v, Len = %d: the store is not bounded", full, m.Len())
	}
	time.Sleep(60 * time.Millisecond)
	var key [32]byte
	if ok, err := m.Remember(ctx, key, time.Second); err != nil || !ok {
		t.Fatalf("after expiry: %v, %v", ok, err)
	}
}

// TestNonces shows use_dpop_nonce with a nonce, then the proof carrying
// it accepted; and a nonce of a verifier with another key refused.
func TestNonces(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	n, err := dpop.NewNonces(key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, dpop.WithNonces(n))
	k := dpoptest.NewKey(t, "ES256")
	_, err = v.Verify(context.Background(), headerWith(k.Proof(t, "POST", target, tok)), request(k))
	var de *dpop.Error
	if !errors.As(err, &de) || !errors.Is(err, dpop.ErrNonceRequired) || de.Code() != "use_dpop_nonce" || de.Nonce == "" {
		t.Fatalf("err = %v, want use_dpop_nonce with a nonce", err)
	}
	if _, err := v.Verify(context.Background(), headerWith(k.Proof(t, "POST", target, tok, dpoptest.Claim("nonce", de.Nonce))), request(k)); err != nil {
		t.Fatal(err)
	}
	// A replica with the same key accepts it.
	n2, _ := dpop.NewNonces(key, time.Minute)
	if !n2.Valid([]byte(de.Nonce), time.Now()) {
		t.Fatal("a replica sharing the key refuses the nonce")
	}
	n3, _ := dpop.NewNonces([]byte("another key of thirty-two bytes!"), time.Minute)
	if n3.Valid([]byte(de.Nonce), time.Now()) || n.Valid([]byte(de.Nonce), time.Now().Add(3*time.Minute)) {
		t.Fatal("a nonce of another key, or an expired one, is valid")
	}
}

// TestNew shows options refused.
func TestNew(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]dpop.Option{
		{dpop.WithAlgorithms("HS256")},
		{dpop.WithAlgorithms("none")},
		{dpop.WithAlgorithms()},
		{dpop.WithWindow(0, time.Second)},
		{nil},
	} {
		if _, err := dpop.New(opts...); err == nil {
			t.Errorf("New accepted %v", opts)
		}
	}
}

func tamper(proof string) string {
	i := strings.LastIndexByte(proof, '.')
	sig := []byte(proof[i+1:])
	if sig[3] == 'A' {
		sig[3] = 'B'
	} else {
		sig[3] = 'A'
	}
	return proof[:i+1] + string(sig)
}
