package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const audience = "https://api.test"

// newVerifier returns a verifier trusting p's key set, at clock c.
func newVerifier(t *testing.T, p *jwttest.IdP, c *jwttest.Clock, opts ...token.Option) *token.Verifier {
	t.Helper()
	opts = append([]token.Option{token.WithClock(c), token.WithRetryBackoff(time.Hour, time.Hour)}, opts...)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer:    p.Issuer,
		Audiences: []string{audience},
		JWKSURL:   p.URL + "/jwks.json",
		Type:      "at+jwt",
	}}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// claimsWith returns valid claims of issuer iss at jwttest.Epoch, with
// changes; a nil value removes a claim.
func claimsWith(iss string, changes map[string]any) map[string]any {
	c := jwttest.ClaimsAt(iss, audience, jwttest.Epoch)
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func waitReady(t *testing.T, v *token.Verifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// wantRefusal checks that err is a *token.Error of kind with reason.
func wantRefusal(t *testing.T, err error, kind error, reason string) {
	t.Helper()
	var te *token.Error
	if !errors.As(err, &te) {
		t.Fatalf("error = %v, want a *token.Error %q", err, reason)
	}
	if !errors.Is(err, kind) || te.Reason != reason {
		t.Fatalf("error = %v (kind %v), want %q (kind %v)", te.Reason, te.Kind, reason, kind)
	}
}

func TestVerifyRotation(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := jwttest.NewRSA("k1", 0), jwttest.NewEC("k2"), jwttest.NewEd("k3")
	p := jwttest.NewIdP(t, k1)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c, token.WithRefetchCooldown(time.Minute))
	waitReady(t, v)
	if got := p.Hits.Load(); got != 1 {
		t.Fatalf("first fetch: %d hits, want 1", got)
	}
	claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
	if _, err := v.Verify(t.Context(), k1.Mint(nil, claims)); err != nil {
		t.Fatal(err)
	}

	// The issuer rotates to k2: the first token signed by it causes one
	// fetch, and passes.
	p.SetKeys(k2)
	p2, err := v.Verify(t.Context(), k2.Mint(nil, claims))
	if err != nil {
		t.Fatal(err)
	}
	if p2.ClientID != "billing" || p.Hits.Load() != 2 {
		t.Fatalf("after rotation: principal %+v, %d hits; want billing, 2", p2, p.Hits.Load())
	}
	// k1 left the key set: its token, verified and cached before, is
	// refused now.
	_, err = v.Verify(t.Context(), k1.Mint(nil, claims))
	wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")

	// Within the cooldown, a new key is not fetched again...
	p.SetKeys(k2, k3)
	_, err = v.Verify(t.Context(), k3.Mint(nil, claims))
	wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
	if got := p.Hits.Load(); got != 2 {
		t.Fatalf("within cooldown: %d hits, want 2", got)
	}
	// ...after it, it is.
	c.Advance(time.Minute)
	if _, err := v.Verify(t.Context(), k3.Mint(nil, jwttest.ClaimsAt(p.Issuer, audience, c.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := p.Hits.Load(); got != 3 {
		t.Fatalf("after cooldown: %d hits, want 3", got)
	}
}

func TestVerifyUnknownKidFlood(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	p := jwttest.NewIdP(t, k1)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c)
	waitReady(t, v)
	claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)

	// A flood of tokens with bogus kids, all at once, with the issuer slow
	// to answer: one fetch serves them all.
	release := p.Hold()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			_, err := v.Verify(t.Context(), k1.Mint(map[string]any{"kid": fmt.Sprintf("bogus-%d", i)}, claims))
			errs <- err
		})
	}
	time.AfterFunc(50*time.Millisecond, release) // let the flood pile up
	wg.Wait()
	release()
	close(errs)
	for err := range errs {
		wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
	}
	if got := p.Hits.Load(); got != 2 {
		t.Fatalf("flood: %d hits, want 2 (first fetch + one refetch)", got)
	}
	// The valid token still passes, without a fetch.
	if _, err := v.Verify(t.Context(), k1.Mint(nil, claims)); err != nil {
		t.Fatal(err)
	}
	// Each cooldown allows one more fetch.
	for round := range 3 {
		c.Advance(token.DefaultRefetchCooldown)
		for i := range 20 {
			_, err := v.Verify(t.Context(), k1.Mint(map[string]any{"kid": fmt.Sprintf("r%d-%d", round, i)}, claims))
			wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
		}
		if got, want := p.Hits.Load(), int64(3+round); got != want {
			t.Fatalf("round %d: %d hits, want %d", round, got, want)
		}
	}
}

func TestVerifyIdPDownAfterFirstFetch(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewRSA("k1", 1)
	p := jwttest.NewIdP(t, k1)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c, token.WithCacheSize(0))
	waitReady(t, v)
	p.Down.Store(true)
	claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
	// A refetch fails...
	_, err := v.Verify(t.Context(), k1.Mint(map[string]any{"kid": "new"}, claims))
	wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
	if p.Hits.Load() != 2 {
		t.Fatalf("%d hits, want 2", p.Hits.Load())
	}
	// ...and the keys fetched before keep serving.
	for range 3 {
		if _, err := v.Verify(t.Context(), k1.Mint(nil, claims)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v, want nil: the keys were fetched once", err)
	}
}

// A key set the issuer answers with is its word, even when no key in it can
// verify: the keys it dropped stop verifying at once, cached tokens
// included, and the verifier stays ready, refusing the issuer's tokens.
func TestVerifyKeySetWithoutUsableKey(t *testing.T) {
	t.Parallel()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	k1 := jwttest.NewEC("k1")
	// k1 itself, relabelled for encryption.
	encKey, err := jwk.FromRaw(k1.Priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = encKey.Set(jwk.KeyIDKey, "k1")
	_ = encKey.Set(jwk.KeyUsageKey, "enc")
	encSet := jwk.NewSet()
	_ = encSet.AddKey(encKey)
	for _, tc := range []struct {
		name string
		keys []byte
	}{
		{"empty", []byte(`{"keys":[]}`)},
		{"encryption key only", jwttest.MustJSON(encSet)},
		{"weak key only", jwttest.JWKS(&jwttest.Signer{KID: "weak", Alg: "RS256", Priv: weak})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := jwttest.NewIdP(t, k1)
			c := jwttest.NewClock(jwttest.Epoch)
			var (
				mu       sync.Mutex
				observed []error
				counts   []int
			)
			v := newVerifier(t, p, c, token.WithKeysObserver(func(_ string, keys int, err error) {
				mu.Lock()
				defer mu.Unlock()
				observed, counts = append(observed, err), append(counts, keys)
			}))
			waitReady(t, v)
			claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
			t1 := k1.Mint(nil, claims)
			first, err := v.Verify(t.Context(), t1)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := v.Verify(t.Context(), t1); err != nil || again != first {
				t.Fatalf("second Verify = %p, %v; want the cached %p", again, err, first)
			}

			// The issuer drops every usable key; a token of an unknown key
			// causes the fetch that learns it.
			p.Keys.Store(&tc.keys)
			_, err = v.Verify(t.Context(), k1.Mint(map[string]any{"kid": "k9"}, claims))
			wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
			if got := p.Hits.Load(); got != 2 {
				t.Fatalf("%d hits, want 2", got)
			}
			// The cached token and a fresh one of the dropped key are refused.
			_, err = v.Verify(t.Context(), t1)
			wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
			_, err = v.Verify(t.Context(), k1.Mint(nil, jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch.Add(time.Second))))
			wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
			if err := v.Ready(); err != nil {
				t.Fatalf("Ready() = %v, want nil: the issuer answered", err)
			}
			mu.Lock()
			last, lastCount := observed[len(observed)-1], counts[len(counts)-1]
			mu.Unlock()
			if lastCount != 0 || last == nil || !strings.Contains(last.Error(), "no key usable") {
				t.Fatalf("observer saw %d keys, %v; want 0 and the missing usable key", lastCount, last)
			}

			// The issuer publishes k1 again: after the cooldown, its tokens
			// pass again.
			p.SetKeys(k1)
			c.Advance(token.DefaultRefetchCooldown)
			if _, err := v.Verify(t.Context(), t1); err != nil {
				t.Fatal(err)
			}
			if got := p.Hits.Load(); got != 3 {
				t.Fatalf("%d hits, want 3", got)
			}
		})
	}
}

// redirector is a real local server, TLS or not, that redirects every
// request to target and counts them.
func redirector(t *testing.T, useTLS bool, target string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, target, http.StatusFound)
	}))
	s.EnableHTTP2 = true
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s, &hits
}

// waitFetchError waits until the first fetch of v's keys failed with an
// error that contains want, and fails if v becomes ready instead.
func waitFetchError(t *testing.T, v *token.Verifier, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		err := v.Ready()
		if err == nil {
			t.Fatalf("Ready() = nil, want a fetch refused for %q", want)
		}
		if !errors.Is(err, token.ErrKeysUnavailable) {
			t.Fatalf("Ready() = %v, want keys unavailable", err)
		}
		if strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want it to contain %q", err, want)
		}
	}
}

// A key set comes at least as safely as it was asked for: a redirect from
// https to http, or to another host, is not followed.
func TestVerifyKeySetRedirect(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	for _, tc := range []struct {
		name    string
		tls     bool   // whether the redirecting server speaks TLS
		host    string // the host name the redirect names
		refusal string // why the redirect is refused, if it is
	}{
		{"https to http", true, "127.0.0.1", "redirect refused: from https to http"},
		{"to another host", false, "localhost", "redirect refused: from host 127.0.0.1 to host localhost"},
		{"same host, other port", false, "127.0.0.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := jwttest.NewIdP(t, k1)
			to := strings.Replace(target.URL, "127.0.0.1", tc.host, 1) + "/jwks.json"
			from, fromHits := redirector(t, tc.tls, to)
			const iss = "https://issuer.test"
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{
				Issuer: iss, Audiences: []string{audience}, JWKSURL: from.URL + "/jwks.json",
			}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithHTTPClient(from.Client()), token.WithRetryBackoff(time.Hour, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			raw := k1.Mint(nil, jwttest.ClaimsAt(iss, audience, jwttest.Epoch))
			if tc.refusal == "" {
				waitReady(t, v)
				if _, err := v.Verify(t.Context(), raw); err != nil {
					t.Fatal(err)
				}
				if target.Hits.Load() != 1 {
					t.Fatalf("%d fetches from the target, want 1", target.Hits.Load())
				}
				return
			}
			waitFetchError(t, v, tc.refusal)
			_, err = v.Verify(t.Context(), raw)
			wantRefusal(t, err, token.ErrKeysUnavailable, "keys of issuer "+iss+" unavailable")
			if fromHits.Load() == 0 || target.Hits.Load() != 0 {
				t.Fatalf("%d requests redirected, %d fetches from the target; want some, 0", fromHits.Load(), target.Hits.Load())
			}
		})
	}
}

// Discovery compares URL schemes as URLs do, without case: an issuer named
// HTTPS://... still needs an https key set, and an HTTPS://... key set is
// https.
func TestVerifyDiscoverScheme(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	for _, tc := range []struct {
		name  string
		upper bool // whether the issuer is named HTTPS://...
		plain bool // whether jwks_uri is the plain HTTP server, else HTTPS://...
	}{
		{"HTTPS issuer, http key set", true, true},
		{"https issuer, HTTPS key set", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := jwttest.NewIdP(t, k1)
			var (
				iss   string
				keyed atomic.Int64
			)
			mux := http.NewServeMux()
			s := httptest.NewUnstartedServer(mux)
			s.EnableHTTP2 = true
			s.StartTLS()
			t.Cleanup(s.Close)
			iss = s.URL
			if tc.upper {
				iss = "HTTPS" + strings.TrimPrefix(s.URL, "https")
			}
			jwksURI := "HTTPS" + strings.TrimPrefix(s.URL, "https") + "/jwks.json"
			if tc.plain {
				jwksURI = target.URL + "/jwks.json"
			}
			mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(jwttest.MustJSON(map[string]string{"issuer": iss, "jwks_uri": jwksURI}))
			})
			mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
				keyed.Add(1)
				_, _ = w.Write(jwttest.JWKS(k1))
			})
			v, err := token.NewVerifier(t.Context(), []token.Issuer{{
				Issuer: iss, Audiences: []string{audience}, Discover: true,
			}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)), token.WithHTTPClient(s.Client()), token.WithRetryBackoff(time.Hour, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			raw := k1.Mint(nil, jwttest.ClaimsAt(iss, audience, jwttest.Epoch))
			if !tc.plain {
				waitReady(t, v)
				if _, err := v.Verify(t.Context(), raw); err != nil {
					t.Fatal(err)
				}
				if keyed.Load() != 1 {
					t.Fatalf("%d key set fetches, want 1", keyed.Load())
				}
				return
			}
			waitFetchError(t, v, "jwks_uri is not https")
			_, err = v.Verify(t.Context(), raw)
			wantRefusal(t, err, token.ErrKeysUnavailable, "keys of issuer "+iss+" unavailable")
			if target.Hits.Load() != 0 {
				t.Fatalf("%d fetches of the plain key set, want 0", target.Hits.Load())
			}
		})
	}
}

func TestVerifyIdPDownFromStart(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEd("k1")
	p := jwttest.NewIdP(t, k1)
	p.Down.Store(true)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c)
	// The first fetch fails, and says why.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		err := v.Ready()
		if !errors.Is(err, token.ErrKeysUnavailable) {
			t.Fatalf("Ready() = %v, want keys unavailable", err)
		}
		if strings.Contains(err.Error(), "503 Service Unavailable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want it to name the cause", err)
		}
	}
	claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
	_, err := v.Verify(t.Context(), k1.Mint(nil, claims))
	wantRefusal(t, err, token.ErrKeysUnavailable, "keys of issuer "+p.Issuer+" unavailable")
	// Within the cooldown nothing is fetched again.
	hits := p.Hits.Load()
	_, err = v.Verify(t.Context(), k1.Mint(nil, claims))
	wantRefusal(t, err, token.ErrKeysUnavailable, "keys of issuer "+p.Issuer+" unavailable")
	if p.Hits.Load() != hits {
		t.Fatalf("hits went from %d to %d within the cooldown", hits, p.Hits.Load())
	}
	// The issuer comes back: the next token after the cooldown fetches.
	p.Down.Store(false)
	c.Advance(token.DefaultRefetchCooldown)
	if _, err := v.Verify(t.Context(), k1.Mint(nil, claims)); err != nil {
		t.Fatal(err)
	}
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v after a successful fetch", err)
	}
}

func TestVerifyFirstFetchRetries(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	p := jwttest.NewIdP(t, k1)
	p.Down.Store(true)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer: p.Issuer, Audiences: []string{audience}, JWKSURL: p.URL + "/jwks.json",
	}}, token.WithRetryBackoff(time.Millisecond, 4*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	// The retries go on with backoff until the issuer answers.
	deadline := time.Now().Add(10 * time.Second)
	for p.Hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 10s, want retries", p.Hits.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if v.Ready() == nil {
		t.Fatal("ready while the issuer is down")
	}
	p.Down.Store(false)
	waitReady(t, v)
}

func TestVerifyCache(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	p := jwttest.NewIdP(t, k1)
	c := jwttest.NewClock(jwttest.Epoch)
	v := newVerifier(t, p, c, token.WithSkew(30*time.Second))
	waitReady(t, v)
	raw := k1.Mint(nil, jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch))
	first, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Verify(t.Context(), raw)
	if err != nil || again != first {
		t.Fatalf("second Verify = %p, %v; want the cached %p", again, err, first)
	}
	// Within the skew after exp, still valid; then expired, cache or not.
	c.Set(jwttest.Epoch.Add(10*time.Minute + 29*time.Second))
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	c.Set(jwttest.Epoch.Add(10*time.Minute + 30*time.Second))
	_, err = v.Verify(t.Context(), raw)
	wantRefusal(t, err, token.ErrExpired, "token expired")
}

func TestVerifyDiscover(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEd("k1")
	p := jwttest.NewIdP(t, k1)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer: p.Issuer, Audiences: []string{audience}, Discover: true, Algorithms: []string{"EdDSA"},
	}}, token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	waitReady(t, v)
	if _, err := v.Verify(t.Context(), k1.Mint(nil, jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch))); err != nil {
		t.Fatal(err)
	}
	if p.MetadataHits.Load() != 1 {
		t.Fatalf("%d metadata fetches, want 1", p.MetadataHits.Load())
	}
}

func TestVerifyLocalSources(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewRSA("k1", 2)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwttest.JWKS(k1), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	mac := jwttest.NewHMAC(secret)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{
		{Issuer: "https://file.test", Audiences: []string{audience}, JWKSFile: file},
		{Issuer: "https://secret.test", Audiences: []string{"other", audience}, Secret: secret, AllowMissingKid: true},
	}, token.WithClock(jwttest.NewClock(jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready() = %v, want nil for local keys", err)
	}
	if _, err := v.Verify(t.Context(), k1.Mint(nil, jwttest.ClaimsAt("https://file.test", audience, jwttest.Epoch))); err != nil {
		t.Fatal(err)
	}
	pr, err := v.Verify(t.Context(), mac.Mint(nil, jwttest.ClaimsAt("https://secret.test", audience, jwttest.Epoch)))
	if err != nil {
		t.Fatal(err)
	}
	if pr.Issuer != "https://secret.test" {
		t.Fatalf("issuer %q", pr.Issuer)
	}
	// A token of one issuer signed with the key of another is refused.
	_, err = v.Verify(t.Context(), mac.Mint(nil, jwttest.ClaimsAt("https://file.test", audience, jwttest.Epoch)))
	wantRefusal(t, err, token.ErrUntrusted, "token algorithm not accepted from its issuer")
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		is   token.Issuer
		want string
	}{
		{"no source", token.Issuer{Issuer: "a", Audiences: []string{"x"}}, "set exactly one key source"},
		{"two sources", token.Issuer{Issuer: "a", Audiences: []string{"x"}, JWKSURL: "https://a/j", Secret: []byte("0123456789abcdef0123456789abcdef")}, "not 2"},
		{"no audience", token.Issuer{Issuer: "a", JWKSURL: "https://a/j"}, "Audiences is empty"},
		{"short secret", token.Issuer{Issuer: "a", Audiences: []string{"x"}, Secret: []byte("short")}, "fewer than 32"},
		{"unknown alg", token.Issuer{Issuer: "a", Audiences: []string{"x"}, JWKSURL: "https://a/j", Algorithms: []string{"none"}}, `algorithm "none" is not supported`},
		{"secret with RS256", token.Issuer{Issuer: "a", Audiences: []string{"x"}, Secret: []byte("0123456789abcdef0123456789abcdef"), Algorithms: []string{"RS256"}}, "verifies only HS256"},
		{"bad url", token.Issuer{Issuer: "a", Audiences: []string{"x"}, JWKSURL: "file:///etc/passwd"}, "not an absolute http or https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := token.NewVerifier(t.Context(), []token.Issuer{tc.is})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
