package introspect_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/introspect"
	"github.com/portcullis/portcullis/gateway/token"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// clock is a settable clock shared by the issuer and the introspector.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is the bundled issuer, a front counting introspection requests,
// and a client allowed to introspect.
type fixture struct {
	iss      *issuertest.Issuer
	clk      *clock
	endpoint string
	secret   string // of the client "gw"
	requests *atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	iss := issuertest.Start(t, cat, issuer.WithClock(clk.Now))
	f := &fixture{iss: iss, clk: clk, requests: new(atomic.Int64)}
	f.secret = iss.AddClient(t, issuer.Client{ID: "gw", Introspect: true})
	h := iss.Server.Handler()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	f.endpoint = front.URL + issuer.IntrospectionPath
	return f
}

func (f *fixture) introspector(t *testing.T, opts ...introspect.Option) *introspect.Introspector {
	t.Helper()
	in, err := introspect.New(f.iss.URL, f.endpoint, "gw", f.secret, append([]introspect.Option{introspect.WithClock(f.clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestIntrospect(t *testing.T) { // not parallel: it counts allocations
	f := newFixture(t)
	secret := f.iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "pro"})
	tok := f.iss.Token(t, "reader", secret)
	in := f.introspector(t, introspect.WithAudiences(issuertest.Audience), introspect.WithCacheMax(time.Minute))
	ctx := context.Background()

	p, err := in.Introspect(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientID != "reader" || p.Subject != "reader" || p.Issuer != f.iss.URL || p.Tier != "pro" || p.TokenID == "" ||
		len(p.Masks) != 1 || p.Masks["LIC"] == 0 || !p.IssuedAt.Equal(f.clk.Now().Truncate(time.Second)) ||
		!p.ExpiresAt.Equal(p.IssuedAt.Add(time.Hour)) {
		t.Errorf("principal %+v", p)
	}
	// Cached: the same principal, no request, no allocation.
	if again, err := in.Introspect(ctx, tok); again != p || err != nil || f.requests.Load() != 1 {
		t.Errorf("second call: %p %v, %d requests; want the cached principal and 1 request", again, err, f.requests.Load())
	}
	if allocs := testing.AllocsPerRun(100, func() { in.Introspect(ctx, tok) }); allocs != 0 {
		t.Errorf("cached introspection allocates %v times", allocs)
	}
	// Past the cache bound, asked again.
	f.clk.Advance(time.Minute)
	if _, err := in.Introspect(ctx, tok); err != nil || f.requests.Load() != 2 {
		t.Errorf("past cache_max: %v, %d requests, want 2", err, f.requests.Load())
	}

	// An inactive token is refused, and the refusal reused briefly.
	for i := range 3 {
		_, err := in.Introspect(ctx, "not-a-token")
		if !errors.Is(err, token.ErrUntrusted) || err.Error() != "token not active" {
			t.Fatalf("inactive #%d: %v", i, err)
		}
	}
	if f.requests.Load() != 3 {
		t.Errorf("%d requests after three refusals of one token, want 3 (one for the refusals)", f.requests.Load())
	}
	f.clk.Advance(introspect.DefaultNegativeTTL)
	in.Introspect(ctx, "not-a-token")
	if f.requests.Load() != 4 {
		t.Errorf("refusal reused past the negative TTL")
	}

	// Never past exp: with the token expired the issuer is asked and
	// says inactive.
	f.clk.Advance(time.Hour)
	if _, err := in.Introspect(ctx, tok); err == nil {
		t.Error("expired token accepted")
	}
}

func TestIntrospectCacheBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := f.iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	in := f.introspector(t, introspect.WithCacheSize(2))
	toks := []string{f.iss.Token(t, "reader", secret), f.iss.Token(t, "reader", secret), f.iss.Token(t, "reader", secret)}
	for _, tok := range toks {
		if _, err := in.Introspect(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	before := f.requests.Load()
	for _, tok := range toks {
		in.Introspect(context.Background(), tok)
	}
	// Three tokens, room for two: at least one is asked again.
	if f.requests.Load() == before {
		t.Error("a cache bounded to 2 answered 3 tokens without asking")
	}
}

// Cached answers from the answers at hand only: an active token's
// principal until its answer lapses, nothing for a token not asked about
// or not active, and it never asks the issuer.
func TestIntrospectorCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret := f.iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	in := f.introspector(t, introspect.WithCacheMax(time.Minute))
	tok := f.iss.Token(t, "reader", secret)
	if _, ok := in.Cached(tok); ok {
		t.Error("Cached before any introspection = true")
	}
	want, err := in.Introspect(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Introspect(context.Background(), "not-active"); err == nil {
		t.Fatal("an unknown token was active")
	}
	asked := f.requests.Load()
	if p, ok := in.Cached(tok); !ok || p != want {
		t.Errorf("Cached(an active token asked about) = %v, %v; want its principal", p, ok)
	}
	if _, ok := in.Cached("not-active"); ok {
		t.Error("Cached(a token whose answer is not active) = true")
	}
	f.clk.Advance(2 * time.Minute)
	if _, ok := in.Cached(tok); ok {
		t.Error("Cached past the cache bound = true")
	}
	if n := f.requests.Load() - asked; n != 0 {
		t.Errorf("Cached made %d introspection requests, want none", n)
	}
}

func TestIntrospectUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"not json", 200, "<html>"},
		{"no active", 200, `{"scope":"x"}`},
		{"error status", 503, `{"error":"temporarily_unavailable"}`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		in, err := introspect.New(f.iss.URL, srv.URL, "gw", "s")
		if err != nil {
			t.Fatal(err)
		}
		_, err = in.Introspect(context.Background(), "tok")
		if !errors.Is(err, token.ErrKeysUnavailable) || err.Error() != "token introspection unavailable; retry shortly" {
			t.Errorf("%s: %v, want ErrKeysUnavailable", tc.name, err)
		}
		srv.Close()
	}
	// The gateway's credentials refused: unavailable too, not the
	// caller's fault.
	in, _ := introspect.New(f.iss.URL, f.endpoint, "gw", "wrong")
	if _, err := in.Introspect(context.Background(), "tok"); !errors.Is(err, token.ErrKeysUnavailable) {
		t.Errorf("wrong secret: %v, want ErrKeysUnavailable", err)
	}
}

func TestNewReportsInvalidOptions(t *testing.T) {
	t.Parallel()
	_, err := introspect.New("", "ftp://x", "", "", introspect.WithCacheMax(-1), introspect.WithTimeout(0), introspect.WithClock(nil))
	for _, want := range []string{"no issuer", `endpoint "ftp://x" is not an http(s) URL`, "no client id or secret", "WithCacheMax(-1ns)", "WithTimeout(0s)", "WithClock(nil)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want it to name %s", err, want)
		}
	}
}

// BenchmarkIntrospectCached is the cost of a token answered from the
// cache.
func BenchmarkIntrospectCached(b *testing.B) {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		b.Fatal(err)
	}
	iss := issuertest.Start(b, cat)
	gw := iss.AddClient(b, issuer.Client{ID: "gw", Introspect: true})
	secret := iss.AddClient(b, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := iss.Token(b, "reader", secret)
	in, err := introspect.New(iss.URL, iss.Server.IntrospectionURL(), "gw", gw)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := in.Introspect(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := in.Introspect(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifierOpaqueCached is the cost of an introspected token
// answered from the cache through the verifier, as the gateway calls it.
func BenchmarkVerifierOpaqueCached(b *testing.B) {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		b.Fatal(err)
	}
	iss := issuertest.Start(b, cat)
	gw := iss.AddClient(b, issuer.Client{ID: "gw", Introspect: true})
	secret := iss.AddClient(b, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := iss.Token(b, "reader", secret)
	in, err := introspect.New(iss.URL, iss.Server.IntrospectionURL(), "gw", gw)
	if err != nil {
		b.Fatal(err)
	}
	v, err := token.NewVerifier(context.Background(), nil, token.WithOpaque(iss.URL, in.Introspect))
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
