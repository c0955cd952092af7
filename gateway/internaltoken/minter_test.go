package internaltoken_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/internaltoken"
	"github.com/portcullis/portcullis/gateway/token"
)

const issuer = "https://gateway.internal"

type clock struct{ unix atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(c.unix.Load(), 0) }
func (c *clock) advance(d time.Duration) { c.unix.Add(int64(d / time.Second)) }

func newMinter(t testing.TB, c *clock, opts ...internaltoken.Option) *internaltoken.Minter {
	t.Helper()
	key, err := internaltoken.LoadOrGenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := internaltoken.New(issuer, key, append([]internaltoken.Option{internaltoken.WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func verifier(t *testing.T, m *internaltoken.Minter, c *clock, audience string) *token.Verifier {
	t.Helper()
	v, err := token.NewVerifier(context.Background(),
		[]token.Issuer{{Issuer: issuer, Audiences: []string{audience}, JWKS: m.JWKS(), Type: "at+jwt"}},
		token.WithClock(token.ClockFunc(c.now)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func caller(c *clock) *token.Principal {
	return &token.Principal{
		Subject: "alice", ClientID: "acme-app", Issuer: "https://auth.example.com", Tier: "pro",
		Masks: map[string]uint64{"LIC": 3}, TokenID: "caller-jti", ExpiresAt: c.now().Add(time.Hour),
	}
}

// TestMintedTokenVerifies verifies a minted token with the gateway/token
// verifier trusting the minter's key set: it names the gateway, the
// audience and the caller, and no other audience accepts it.
func TestMintedTokenVerifies(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(1_800_000_000)
	m := newMinter(t, c)
	auth, err := m.Authorization(caller(c), "Bearer caller", "licensing")
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		t.Fatalf("Authorization %q does not start with Bearer", auth)
	}
	p, err := verifier(t, m, c, "licensing").Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer != issuer || p.ClientID != "acme-app" || p.Subject != "alice" || p.Tier != "pro" || p.Masks["LIC"] != 3 {
		t.Errorf("principal %+v", p)
	}
	if got, want := p.ExpiresAt, c.now().Add(internaltoken.DefaultLifetime); !got.Equal(want) {
		t.Errorf("expires at %v, want %v", got, want)
	}
	if p.TokenID == "" || p.TokenID == "caller-jti" {
		t.Errorf("jti %q, want a fresh one", p.TokenID)
	}
	if _, err := verifier(t, m, c, "orders").Verify(context.Background(), raw); err == nil {
		t.Error("a verifier of another audience accepted it")
	}
}

// TestMintCache counts signatures: a caller token's second call to the
// same audience is served from the cache, another audience, another
// caller token, or a token past three quarters of its life is signed anew,
// and an empty caller token is never cached.
func TestMintCache(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(1_800_000_000)
	m := newMinter(t, c, internaltoken.WithLifetime(60*time.Second))
	p := caller(c)
	steps := []struct {
		name           string
		token, aud     string
		advance        time.Duration
		wantMints      uint64
		wantSameAsLast bool
	}{
		{"first", "Bearer a", "licensing", 0, 1, false},
		{"again", "Bearer a", "licensing", 0, 1, true},
		{"later, still fresh", "Bearer a", "licensing", 44 * time.Second, 1, true},
		{"other audience", "Bearer a", "orders", 0, 2, false},
		{"other caller token", "Bearer b", "licensing", 0, 3, false},
		{"a quarter of life left", "Bearer a", "licensing", time.Second, 4, false},
		{"no caller token", "", "licensing", 0, 5, false},
		{"no caller token again", "", "licensing", 0, 6, false},
	}
	last := ""
	for _, s := range steps {
		c.advance(s.advance)
		got, err := m.Authorization(p, s.token, s.aud)
		if err != nil {
			t.Fatal(err)
		}
		if m.Mints() != s.wantMints || (got == last) != s.wantSameAsLast {
			t.Errorf("%s: %d mints, same as last %v; want %d, %v", s.name, m.Mints(), got == last, s.wantMints, s.wantSameAsLast)
		}
		last = got
	}
}

// TestLifetimeCappedByCaller wants an internal token to expire with a
// caller's token that expires sooner than its lifetime.
func TestLifetimeCappedByCaller(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(1_800_000_000)
	m := newMinter(t, c)
	p := caller(c)
	p.ExpiresAt = c.now().Add(10 * time.Second)
	auth, err := m.Authorization(p, "Bearer a", "licensing")
	if err != nil {
		t.Fatal(err)
	}
	got, err := verifier(t, m, c, "licensing").Verify(context.Background(), strings.TrimPrefix(auth, "Bearer "))
	if err != nil {
		t.Fatal(err)
	}
	if !got.ExpiresAt.Equal(p.ExpiresAt) {
		t.Errorf("expires at %v, want the caller's %v", got.ExpiresAt, p.ExpiresAt)
	}
}

// TestKeyDirKeepsTheKey wants a key directory's key written once and
// loaded again: the published key set survives a restart.
func TestKeyDirKeepsTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	jwks := func() string {
		key, err := internaltoken.LoadOrGenerateKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		m, err := internaltoken.New(issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(m.JWKS())
	}
	first, second := jwks(), jwks()
	if first != second {
		t.Errorf("key set changed across loads:\n%s\n%s", first, second)
	}
	if !strings.Contains(first, `"alg":"ES256"`) || strings.Contains(first, `"d"`) {
		t.Errorf("key set %s: want a public ES256 key", first)
	}
}

// TestNewReportsBadOptions wants each invalid setting named.
func TestNewReportsBadOptions(t *testing.T) {
	t.Parallel()
	key, err := internaltoken.LoadOrGenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		issuer string
		opt    internaltoken.Option
		want   string
	}{
		{"gateway", internaltoken.WithCacheSize(1), `issuer "gateway": not an absolute URL`},
		{issuer, internaltoken.WithLifetime(time.Millisecond), "WithLifetime(1ms): must be at least 1s"},
		{issuer, internaltoken.WithCacheSize(-1), "WithCacheSize(-1): must not be negative"},
		{issuer, internaltoken.WithClock(nil), "WithClock(nil)"},
	} {
		if _, err := internaltoken.New(tc.issuer, key, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %v): %v, want %q", tc.issuer, tc.opt, err, tc.want)
		}
	}
}
