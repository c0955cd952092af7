package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/jwttest"
)

// When every verification slot is taken, a token not in the cache waits
// for one up to the configured wait, never past its context, and is then
// refused as overloaded; tokens in the cache pass meanwhile. The slots
// are taken here as verifications in flight take them.
func TestVerifyOverloaded(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEd("k1")
	const iss = "https://i.test"
	const wait = 30 * time.Millisecond
	v, err := NewVerifier(t.Context(), []Issuer{{Issuer: iss, Audiences: []string{"aud"}, JWKS: jwttest.JWKS(k)}},
		WithClock(jwttest.NewClock(jwttest.Epoch)), WithMaxConcurrentVerifications(2), WithVerificationWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	mint := func(i int) string {
		return k.Mint(nil, jwttest.ClaimsAt(iss, "aud", jwttest.Epoch.Add(time.Duration(i)*time.Second)))
	}
	cached := mint(0)
	if _, err := v.Verify(t.Context(), cached); err != nil {
		t.Fatal(err)
	}

	// Both slots taken.
	for range 2 {
		if err := v.acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err = v.Verify(t.Context(), mint(1))
	if !errors.Is(err, ErrOverloaded) || err.Error() != "too many token verifications in flight; retry shortly" {
		t.Fatalf("Verify = %v, want overloaded", err)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("refused after %v, want a wait of %v", d, wait)
	}
	// Never past the context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start = time.Now()
	if _, err := v.Verify(ctx, mint(2)); !errors.Is(err, ErrOverloaded) || time.Since(start) >= wait {
		t.Fatalf("Verify with a done context = %v after %v, want overloaded at once", err, time.Since(start))
	}
	// Cached tokens are not held up.
	if _, err := v.Verify(t.Context(), cached); err != nil || !v.Cached(cached) {
		t.Fatalf("cached token: %v", err)
	}
	// A slot freed during the wait is taken.
	time.AfterFunc(wait/3, v.release)
	if _, err := v.Verify(t.Context(), mint(3)); err != nil {
		t.Fatalf("Verify after a slot was freed: %v", err)
	}
	v.release()
	for i := range 4 {
		if _, err := v.Verify(t.Context(), mint(4+i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.slots); n != 0 {
		t.Fatalf("%d slots taken after the verifications, want 0", n)
	}
}

// By default, up to 4 × GOMAXPROCS verifications run at once.
func TestDefaultMaxConcurrentVerifications(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(t.Context(), []Issuer{{Issuer: "https://i.test", Audiences: []string{"aud"}, JWKS: jwttest.JWKS(jwttest.NewEd("k1"))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if got, want := cap(v.slots), DefaultMaxConcurrentVerifications(); got != want || want < 4 {
		t.Fatalf("%d slots, want %d", got, want)
	}
}
