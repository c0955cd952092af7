package exchange_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/exchange"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"

	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
)

const extAudience = "portcullis-edge"

type fixture struct {
	signer *jwttest.Signer
	idp    *jwttest.IdP
	iss    *issuertest.Issuer
	secret string
	clock  *jwttest.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: jwttest.NewEC("ext"), clock: jwttest.NewClock(time.Now())}
	f.idp = jwttest.NewIdP(t, f.signer)
	f.iss = issuertest.Start(t, cat, issuer.WithExchange(issuer.Exchange{Issuers: []issuer.ExternalIssuer{{
		Issuer: token.Issuer{Issuer: f.idp.URL, Audiences: []string{extAudience}, Discover: true},
		Claims: []issuer.ClaimRule{{Claim: "groups", Value: "readers", Grants: []string{"LIC.READ_REQUIREMENTS"}}},
	}}}))
	f.secret = f.iss.AddClient(t, issuer.Client{ID: "edge", Grants: []string{"LIC.READ_REQUIREMENTS"}, Exchange: true})
	return f
}

func (f *fixture) external(sub string, ttl time.Duration) (string, time.Time) {
	now := time.Now()
	exp := now.Add(ttl)
	return f.signer.Mint(nil, map[string]any{"iss": f.idp.URL, "sub": sub, "aud": extAudience, "iat": now.Unix(), "exp": exp.Unix(), "groups": []string{"readers"}}), time.Unix(exp.Unix(), 0)
}

func (f *fixture) exchanger(t *testing.T, opts ...exchange.Option) *exchange.Exchanger {
	t.Helper()
	x, err := exchange.New(f.iss.URL+issuer.TokenPath, "edge", f.secret, append([]exchange.Option{exchange.WithClock(f.clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestExchangeOnceUntilSubjectExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	x := f.exchanger(t)
	subject, exp := f.external("alice", 10*time.Minute)

	var wg sync.WaitGroup
	tokens := make([]string, 16)
	errs := make([]error, 16)
	for i := range tokens {
		wg.Go(func() { tokens[i], errs[i] = x.Exchange(context.Background(), subject, exp) })
	}
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("call %d: %v, token equal to the first: %v", i, errs[i], tokens[i] == tokens[0])
		}
	}
	if n := x.Requests(); n != 1 {
		t.Errorf("16 concurrent exchanges of one token made %d requests, want 1", n)
	}

	// The internal token: the issuer's, with the mapped permissions.
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: f.iss.URL, Audiences: []string{issuertest.Audience}, Discover: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	p, err := v.Verify(t.Context(), tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || p.Masks["LIC"] == 0 || p.Issuer != f.iss.URL {
		t.Errorf("internal token: sub %q issuer %q masks %v", p.Subject, p.Issuer, p.Masks)
	}

	f.clock.Advance(9 * time.Minute)
	if tok, err := x.Exchange(context.Background(), subject, exp); err != nil || tok != tokens[0] || x.Requests() != 1 {
		t.Errorf("before the subject's expiry: %v, same token %v, %d requests", err, tok == tokens[0], x.Requests())
	}
	f.clock.Set(exp)
	x.Exchange(context.Background(), subject, exp)
	if n := x.Requests(); n != 2 {
		t.Errorf("at the subject's expiry the cached token was still used (%d requests)", n)
	}
}

func TestExchangeRefusalCachedBriefly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	x := f.exchanger(t, exchange.WithNegativeTTL(5*time.Second))
	forged := jwttest.NewEC("ext").Mint(nil, map[string]any{"iss": f.idp.URL, "sub": "mallory", "aud": extAudience, "exp": time.Now().Add(time.Hour).Unix()})
	for range 2 {
		_, err := x.Exchange(context.Background(), forged, time.Now().Add(time.Hour))
		var xe *exchange.Error
		if !errors.As(err, &xe) || xe.Code != "invalid_grant" || strings.Contains(err.Error(), forged) {
			t.Fatalf("forged subject: %v", err)
		}
	}
	if n := x.Requests(); n != 1 {
		t.Errorf("a refused token was asked about %d times within the negative TTL", n)
	}
	f.clock.Advance(5 * time.Second)
	x.Exchange(context.Background(), forged, time.Now().Add(time.Hour))
	if n := x.Requests(); n != 2 {
		t.Errorf("after the negative TTL: %d requests, want 2", n)
	}
}

func TestExchangeUnavailableNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	down := httptest.NewServer(nil)
	down.Close()
	x, err := exchange.New(down.URL+"/oauth2/token", "edge", "secret")
	if err != nil {
		t.Fatal(err)
	}
	subject, exp := f.external("alice", time.Minute)
	for range 2 {
		_, err := x.Exchange(context.Background(), subject, exp)
		var xe *exchange.Error
		if !errors.As(err, &xe) || xe.Code != "" || !strings.HasPrefix(err.Error(), "token exchange unavailable") {
			t.Fatalf("endpoint down: %v", err)
		}
	}
	if n := x.Requests(); n != 2 {
		t.Errorf("an unavailable endpoint was asked %d times, want every time (2)", n)
	}
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	_, err := exchange.New("ftp://x", "", "", exchange.WithCacheSize(0), exchange.WithNegativeTTL(-1), exchange.WithTimeout(0), nil)
	for _, want := range []string{"not an http(s) URL", "no client id or secret", "cache size 0", "negative TTL -1ns", "timeout 0s", "nil Option"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, want %q", err, want)
		}
	}
}
