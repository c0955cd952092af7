package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// privateSet returns a key set holding the private keys of signers, with
// their kids, as an issuer that leaks its keys would serve it.
func privateSet(t *testing.T, signers ...*jwttest.Signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		var raw any = s.Priv
		if s.MAC != nil {
			raw = s.MAC
		}
		k, err := jwk.FromRaw(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.KID)
		_ = set.AddKey(k)
	}
	return jwttest.MustJSON(set)
}

// A fetched key set that holds private key material is refused, and says
// so: the keys fetched before keep serving.
func TestVerifyFetchedPrivateKeys(t *testing.T) {
	t.Parallel()
	good := jwttest.NewEC("k1")
	for _, tc := range []struct {
		name string
		doc  func(t *testing.T) []byte
		want string
	}{
		{"EC private key", func(t *testing.T) []byte { return privateSet(t, good) }, `key "k1" has d`},
		{"RSA private key", func(t *testing.T) []byte { return privateSet(t, jwttest.NewRSA("r1", 0)) }, `key "r1" has d, p, q, dp, dq, qi`},
		{"Ed25519 private key", func(t *testing.T) []byte { return privateSet(t, jwttest.NewEd("e1")) }, `key "e1" has d`},
		{"shared secret", func(t *testing.T) []byte {
			return privateSet(t, &jwttest.Signer{KID: "s1", MAC: []byte("0123456789abcdef0123456789abcdef")})
		}, `key "s1" has k`},
		{"public key with a stray prime", func(t *testing.T) []byte {
			doc := string(jwttest.JWKS(jwttest.NewRSA("r2", 1)))
			return []byte(strings.Replace(doc, `"kid":"r2"`, `"kid":"r2","p":"AQAB"`, 1))
		}, `key "r2" has p`},
		{"private key beside public ones", func(t *testing.T) []byte {
			var pub, priv struct{ Keys []json.RawMessage }
			if json.Unmarshal(jwttest.JWKS(good), &pub) != nil || json.Unmarshal(privateSet(t, jwttest.NewEC("k2")), &priv) != nil {
				t.Fatal("bad key sets")
			}
			pub.Keys = append(pub.Keys, priv.Keys...)
			return jwttest.MustJSON(pub)
		}, `key "k2" has d`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := tc.doc(t)
			var (
				mu       sync.Mutex
				observed []error
			)
			observe := token.WithKeysObserver(func(_ string, _ int, err error) {
				mu.Lock()
				defer mu.Unlock()
				observed = append(observed, err)
			})
			lastObserved := func() error {
				mu.Lock()
				defer mu.Unlock()
				return observed[len(observed)-1]
			}
			want := "key set holds private key material; refused (" + tc.want + ")"

			// From the start: never ready, and Ready says why.
			leaky := jwttest.NewIdP(t)
			leaky.Keys.Store(&doc)
			v := newVerifier(t, leaky, jwttest.NewClock(jwttest.Epoch), observe)
			waitFetchError(t, v, want)

			// After good keys: the refusal does not replace them.
			p := jwttest.NewIdP(t, good)
			v = newVerifier(t, p, jwttest.NewClock(jwttest.Epoch), observe, token.WithCacheSize(0))
			waitReady(t, v)
			claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
			p.Keys.Store(&doc)
			_, err := v.Verify(t.Context(), good.Mint(map[string]any{"kid": "k9"}, claims))
			wantRefusal(t, err, token.ErrUntrusted, "token signed by an unknown key")
			if p.Hits.Load() != 2 {
				t.Fatalf("%d key set fetches, want 2", p.Hits.Load())
			}
			if err := lastObserved(); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("observer saw %v, want %q", err, want)
			}
			if _, err := v.Verify(t.Context(), good.Mint(nil, claims)); err != nil {
				t.Fatalf("the keys fetched before: %v", err)
			}
			if err := v.Ready(); err != nil {
				t.Fatalf("Ready() = %v, want nil: keys were fetched", err)
			}
		})
	}
}

// records is a slog handler that keeps what is logged.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// lines returns each record as "LEVEL message key=value ...".
func (r *records) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.list {
		line := rec.Level.String() + " " + rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

// Each change of an issuer's key state is logged once, however many
// fetches see it, and never a token or key material.
func TestVerifyLogsKeyStates(t *testing.T) {
	t.Parallel()
	k1, k2 := jwttest.NewEC("k1"), jwttest.NewEC("k2")
	p := jwttest.NewIdP(t, k1)
	p.Down.Store(true)
	c := jwttest.NewClock(jwttest.Epoch)
	log := &records{}
	v := newVerifier(t, p, c, token.WithLogger(slog.New(log)), token.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), token.WithCacheSize(0))
	iss := "issuer=" + p.Issuer
	want := []string{}
	check := func(step string, line ...string) {
		t.Helper()
		want = append(want, line...)
		got := log.lines()
		if len(got) != len(want) {
			t.Fatalf("%s: logged\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Fatalf("%s: record %d is\n%s\nwant it to start with\n%s", step, i, got[i], want[i])
			}
		}
	}

	// Down from the start: many attempts, one record.
	for deadline := time.Now().Add(10 * time.Second); p.Hits.Load() < 5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 10s, want retries", p.Hits.Load())
		}
	}
	check("down", "WARN token issuer keys fetch failing "+iss+" previous_keys_serve=false error=issuer "+p.Issuer+": keys: ")
	p.Down.Store(false)
	waitReady(t, v)
	check("up", "INFO token issuer keys ready "+iss+" keys=1")

	// A leaked key set, fetched twice: refused, logged once.
	leak := privateSet(t, k1)
	p.Keys.Store(&leak)
	claims := jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch)
	for i := range 2 {
		_, _ = v.Verify(t.Context(), k1.Mint(map[string]any{"kid": fmt.Sprint("unknown-", i)}, claims))
		c.Advance(token.DefaultRefetchCooldown)
	}
	check("leak", "ERROR token issuer key set refused "+iss+" previous_keys_serve=true error=")
	if _, err := v.Verify(t.Context(), k1.Mint(nil, claims)); err != nil {
		t.Fatalf("the keys fetched before: %v", err)
	}

	// Fixed, then down again.
	p.SetKeys(k1, k2)
	if _, err := v.Verify(t.Context(), k2.Mint(nil, claims)); err != nil {
		t.Fatal(err)
	}
	check("fixed", "INFO token issuer keys recovered "+iss+" keys=2")
	p.Down.Store(true)
	c.Advance(token.DefaultRefetchCooldown)
	_, _ = v.Verify(t.Context(), k2.Mint(map[string]any{"kid": "unknown"}, claims))
	check("down again", "WARN token issuer keys fetch failing "+iss+" previous_keys_serve=true error=")
	if p.Hits.Load() < 9 {
		t.Fatalf("%d fetches, want at least 9", p.Hits.Load())
	}

	// Neither key material nor tokens are logged.
	var leaked struct{ Keys []struct{ D string } }
	if err := json.Unmarshal(leak, &leaked); err != nil || leaked.Keys[0].D == "" {
		t.Fatalf("leaked key set %s: %v", leak, err)
	}
	for _, line := range log.lines() {
		if strings.Contains(line, leaked.Keys[0].D) || strings.Contains(line, "eyJ") {
			t.Fatalf("logged %q", line)
		}
	}
}

// A verifier started while its issuer is down is ready soon after the
// issuer is back: the default backoff stops growing at 5 s, and Ready says
// when the next attempt is. This test waits in real time, about 10 to 20 s.
func TestVerifyFirstFetchBackoffCapped(t *testing.T) {
	t.Parallel()
	k1 := jwttest.NewEC("k1")
	p := jwttest.NewIdP(t, k1)
	p.Down.Store(true)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: p.Issuer, Audiences: []string{audience}, JWKSURL: p.URL + "/jwks.json"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	next := regexp.MustCompile(`; next attempt in ([0-9.a-zµ]+)$`)
	longest := time.Duration(0)
	for deadline := time.Now().Add(30 * time.Second); p.Hits.Load() < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 30s, want 6", p.Hits.Load())
		}
		err := v.Ready()
		if !errors.Is(err, token.ErrKeysUnavailable) {
			t.Fatalf("Ready() = %v while the issuer is down", err)
		}
		if m := next.FindStringSubmatch(err.Error()); m != nil {
			d, perr := time.ParseDuration(m[1])
			if perr != nil || d > token.DefaultRetryBackoffMax {
				t.Fatalf("Ready() = %v: want the next attempt within %v", err, token.DefaultRetryBackoffMax)
			}
			longest = max(longest, d)
		}
	}
	if longest < token.DefaultRetryBackoffMax/4 {
		t.Fatalf("the longest announced delay was %v; want the backoff to have grown", longest)
	}
	p.Down.Store(false)
	back := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), token.DefaultRetryBackoffMax+2*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatalf("not ready %v after the issuer came back: %v", time.Since(back), err)
	}
}
