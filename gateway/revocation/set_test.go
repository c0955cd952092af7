package revocation_test

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const iss = "https://issuer.test"

// newSet returns a set with the options, closed when the test ends.
func newSet(t testing.TB, opts ...revocation.Option) *revocation.Set {
	t.Helper()
	set, err := revocation.New(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return set
}

// eventually waits up to d for cond, polling.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSetRevoked(t *testing.T) {
	t.Parallel()
	clock := jwttest.NewClock(jwttest.Epoch)
	set := newSet(t, revocation.WithClock(clock.Now))
	if !set.Loaded() || set.Ready() != nil || !set.Fresh() {
		t.Fatalf("a set without sources: loaded %v, ready %v, err %v; want loaded, ready and fresh", set.Loaded(), set.Ready(), set.Err())
	}
	exp := jwttest.Epoch.Add(time.Hour)
	before := jwttest.Epoch.Add(-time.Minute)
	if err := set.Add(
		revocation.Revocation{Issuer: iss, TokenID: "t1", Expires: exp},
		revocation.Revocation{Issuer: iss, ClientID: "c1", Before: before, Expires: exp},
		revocation.Revocation{Issuer: iss, TokenID: "gone", Expires: jwttest.Epoch}, // expired: ignored
	); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		issuer, jti, client string
		iat                 time.Time
		want                bool
	}{
		{iss, "t1", "anyone", before, true},
		{iss, "t2", "anyone", before, false},
		{"https://other.test", "t1", "anyone", before, false},
		{iss + "x", "t1", "anyone", before, false},
		{iss, "", "c1", before.Add(-time.Second), true},
		{iss, "", "c1", before, false}, // issued at Before: after the revocation
		{iss, "t9", "c1", time.Time{}, true},
		{iss, "t9", "c2", time.Time{}, false},
		{"https://other.test", "t9", "c1", before.Add(-time.Second), false},
		{iss, "gone", "anyone", before, false},
	} {
		if got := set.Revoked(tc.issuer, tc.jti, tc.client, tc.iat); got != tc.want {
			t.Errorf("Revoked(%q, %q, %q, %v) = %v, want %v", tc.issuer, tc.jti, tc.client, tc.iat, got, tc.want)
		}
	}
	if set.Len() != 2 {
		t.Fatalf("Len = %d, want 2", set.Len())
	}
	// A later revocation of the same client moves its time on.
	if err := set.Add(revocation.Revocation{Issuer: iss, ClientID: "c1", Before: before.Add(time.Hour), Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if !set.Revoked(iss, "", "c1", before.Add(time.Minute)) || set.Len() != 2 {
		t.Fatalf("after a second client revocation: revoked %v, Len %d; want true, 2", set.Revoked(iss, "", "c1", before.Add(time.Minute)), set.Len())
	}
	var nilSet *revocation.Set
	if nilSet.Revoked(iss, "t1", "c1", time.Time{}) || !nilSet.Loaded() {
		t.Fatal("a nil set revokes nothing and is loaded")
	}
}

// Revocations leave the set by themselves once they expire.
func TestSetExpiry(t *testing.T) {
	t.Parallel()
	clock := jwttest.NewClock(jwttest.Epoch)
	set := newSet(t, revocation.WithClock(clock.Now), revocation.WithSweepInterval(time.Millisecond))
	var rs []revocation.Revocation
	for i := range 5000 {
		rs = append(rs, revocation.Revocation{Issuer: iss, TokenID: strconv.Itoa(i), Expires: jwttest.Epoch.Add(time.Duration(1+i%2) * time.Minute)})
	}
	rs = append(rs, revocation.Revocation{Issuer: iss, ClientID: "c", Before: jwttest.Epoch, Expires: jwttest.Epoch.Add(time.Minute)})
	if err := set.Add(rs...); err != nil {
		t.Fatal(err)
	}
	if set.Len() != 5001 {
		t.Fatalf("Len = %d, want 5001", set.Len())
	}
	clock.Advance(time.Minute)
	eventually(t, 5*time.Second, "half the revocations expire", func() bool { return set.Len() == 2500 })
	if set.Revoked(iss, "0", "x", jwttest.Epoch) || !set.Revoked(iss, "1", "x", jwttest.Epoch) || set.Revoked(iss, "", "c", time.Time{}) {
		t.Fatal("the expired revocations still revoke, or the others do not")
	}
	clock.Advance(time.Minute)
	eventually(t, 5*time.Second, "every revocation expires", func() bool { return set.Len() == 0 })
}

func TestSetAddInvalid(t *testing.T) {
	t.Parallel()
	set := newSet(t)
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		r    revocation.Revocation
		want string
	}{
		{revocation.Revocation{TokenID: "t", Expires: exp}, "no issuer"},
		{revocation.Revocation{Issuer: iss, Expires: exp}, "neither a token id nor a client id"},
		{revocation.Revocation{Issuer: iss, TokenID: "t", ClientID: "c", Before: exp, Expires: exp}, "both a token id and a client id"},
		{revocation.Revocation{Issuer: iss, ClientID: "c", Expires: exp}, "a client revocation needs a time (Before)"},
		{revocation.Revocation{Issuer: iss, TokenID: "t"}, "no expiry"},
		{revocation.Revocation{Issuer: iss, TokenID: strings.Repeat("t", 257), Expires: exp}, "token id longer than 256 bytes"},
		{revocation.Revocation{Issuer: iss, ClientID: strings.Repeat("c", 257), Before: exp, Expires: exp}, "client id longer than 256 bytes"},
	} {
		if err := set.Add(tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%+v) = %v, want %q", tc.r, err, tc.want)
		}
	}
	if set.Len() != 0 {
		t.Fatalf("Len = %d after invalid revocations, want 0", set.Len())
	}
}

func TestWire(t *testing.T) {
	t.Parallel()
	r := revocation.Revocation{Issuer: iss, ClientID: "billing", Before: time.Unix(1000, 1), Expires: time.Unix(2000, 0)}
	if got, want := string(r.Marshal()), `{"iss":"https://issuer.test","client_id":"billing","before":1001,"exp":2000}`; got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
	back, err := revocation.Unmarshal(r.Marshal(), "")
	if err != nil || back.Before.Unix() != 1001 || back.ClientID != "billing" || back.Issuer != iss {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	// The context names the issuer when the revocation does not.
	back, err = revocation.Unmarshal([]byte(`{"jti":"j","exp":2000}`), iss)
	if err != nil || back.Issuer != iss || back.TokenID != "j" || !back.Expires.Equal(time.Unix(2000, 0)) {
		t.Fatalf("Unmarshal = %+v, %v", back, err)
	}
	for _, bad := range []string{`{"jti":"j"}`, `{"jti":"j","exp":-1}`, `{"jti":"j","exp":99999999999}`, `{"exp":5}`, `[`, `{"client_id":"c","exp":5}`} {
		if _, err := revocation.Unmarshal([]byte(bad), iss); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", bad)
		}
	}
}

func TestNewInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  revocation.Option
		want string
	}{
		{revocation.WithClock(nil), "WithClock(nil)"},
		{revocation.WithStaleness(time.Millisecond), "WithStaleness(1ms): the staleness must be at least 100ms"},
		{revocation.WithSweepInterval(0), "WithSweepInterval(0s): the interval must be positive"},
		{revocation.WithMaxEntries(0), "WithMaxEntries(0): the bound must be positive"},
		{revocation.WithRetryBackoff(time.Second, time.Millisecond), "WithRetryBackoff(1s, 1ms)"},
		{revocation.WithHTTPClient(nil), "WithHTTPClient(nil)"},
		{revocation.WithLogger(nil), "WithLogger(nil)"},
		{revocation.WithFeed("", "http://x.test/r"), `WithFeed("", "http://x.test/r"): no issuer`},
		{revocation.WithFeed(iss, "ftp://x.test/r"), `WithFeed("https://issuer.test", "ftp://x.test/r"): not an http(s) URL`},
		{revocation.WithDiscoveredFeed("issuer"), `WithDiscoveredFeed("issuer"): not an http(s) issuer URL`},
		{revocation.WithRedis(nil), "WithRedis(nil)"},
		{nil, "nil Option"},
	} {
		if set, err := revocation.New(t.Context(), tc.opt); err == nil || !strings.Contains(err.Error(), "revocation: invalid options: "+tc.want) {
			if set != nil {
				set.Close()
			}
			t.Errorf("New = %v, want %q", err, tc.want)
		}
	}
	_, err := revocation.New(t.Context(), revocation.WithFeed(iss, "http://a.test/r"), revocation.WithDiscoveredFeed(iss))
	if err == nil || !strings.Contains(err.Error(), `issuer "https://issuer.test" has two feeds`) {
		t.Fatalf("New with two feeds of one issuer = %v", err)
	}
}

// Past its bound, the set keeps every revocation and reports itself
// over capacity.
func TestSetOverCapacity(t *testing.T) {
	t.Parallel()
	set := newSet(t, revocation.WithMaxEntries(2))
	exp := time.Now().Add(time.Hour)
	for i := range 3 {
		if err := set.Add(revocation.Revocation{Issuer: iss, TokenID: strconv.Itoa(i), Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Err(); err == nil || err.Error() != "revocations stale: 3 revocations, more than the bound of 2" {
		t.Fatalf("Err = %v", err)
	}
	if !set.Revoked(iss, "2", "", time.Time{}) {
		t.Fatal("the revocation past the bound was dropped")
	}
}

// fill returns a set of n revoked tokens.
func fill(b *testing.B, n int) *revocation.Set {
	b.Helper()
	set := newSet(b)
	exp := time.Now().Add(time.Hour)
	batch := make([]revocation.Revocation, 0, 4096)
	for i := range n {
		batch = append(batch, revocation.Revocation{Issuer: iss, TokenID: "jti-" + strconv.Itoa(i), Expires: exp})
		if len(batch) == cap(batch) || i == n-1 {
			if err := set.Add(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return set
}

// BenchmarkRevoked is the check of a token that is not revoked, against a
// million revoked tokens and a revoked client, and of one that is.
func BenchmarkRevoked(b *testing.B) {
	set := fill(b, 1<<20)
	if err := set.Add(revocation.Revocation{Issuer: iss, ClientID: "other", Before: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	iat := time.Now()
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if set.Revoked(iss, "Zm9vYmFyYmF6cXV4cXV1eA", "billing", iat) {
				b.Fatal("revoked")
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !set.Revoked(iss, "jti-4242", "billing", iat) {
				b.Fatal("not revoked")
			}
		}
	})
	b.Run("empty", func(b *testing.B) {
		empty := newSet(b)
		b.ReportAllocs()
		for b.Loop() {
			if empty.Revoked(iss, "Zm9vYmFyYmF6cXV4cXV1eA", "billing", iat) {
				b.Fatal("revoked")
			}
		}
	})
}

// BenchmarkSetMemory reports the heap a million revoked tokens take, per
// revocation (B/entry).
func BenchmarkSetMemory(b *testing.B) {
	const n = 1 << 20
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		set := fill(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/entry")
		runtime.KeepAlive(set)
	}
}
