package revocation_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/internal/jwttest"
)

// newFeed serves a feed of iss on a real HTTP server and returns it with
// its URL.
func newFeed(t testing.TB, opts ...revocation.FeedOption) (*revocation.Feed, string) {
	t.Helper()
	feed, err := revocation.NewFeed(iss, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(feed)
	t.Cleanup(srv.Close)
	return feed, srv.URL + revocation.FeedPath
}

// token returns a revocation of the token jti, an hour from now.
func token(jti string) revocation.Revocation {
	return revocation.Revocation{Issuer: iss, TokenID: jti, Expires: time.Now().Add(time.Hour)}
}

// getPage asks the feed at u with the query.
func getPage(t *testing.T, u, query string) (*http.Response, revocation.Page) {
	t.Helper()
	res, err := http.Get(u + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var p revocation.Page
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return res, p
}

func TestFeedHTTP(t *testing.T) {
	t.Parallel()
	feed, u := newFeed(t, revocation.WithFeedPageSize(2))
	if err := feed.Add(token("a"), token("b"), token("a"), token("c"),
		revocation.Revocation{Issuer: iss, ClientID: "billing", Before: time.Unix(1000, 0), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if feed.Len() != 4 {
		t.Fatalf("Len = %d, want 4: a repeated revocation is kept once", feed.Len())
	}
	res, p := getPage(t, u, "since=0")
	if res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", res.Header)
	}
	if p.Issuer != iss || p.Epoch == "" || p.Next != 2 || !p.More || len(p.Revocations) != 2 || p.Revocations[0].TokenID != "a" || p.Revocations[0].Issuer != "" {
		t.Fatalf("first page %+v", p)
	}
	_, p2 := getPage(t, u, fmt.Sprintf("since=%d&epoch=%s", p.Next, p.Epoch))
	if p2.Next != 4 || p2.More || len(p2.Revocations) != 2 || p2.Revocations[1].ClientID != "billing" || p2.Revocations[1].Before != 1000 {
		t.Fatalf("second page %+v", p2)
	}
	// Another epoch, or a number beyond the feed, starts over.
	for _, q := range []string{"since=4&epoch=other", "since=99&epoch=" + p.Epoch} {
		if _, p3 := getPage(t, u, q); p3.Next != 2 || len(p3.Revocations) != 2 || p3.Revocations[0].TokenID != "a" {
			t.Fatalf("%s: %+v, want the first page", q, p3)
		}
	}
	// Nothing newer: an empty page at once without wait...
	if _, p4 := getPage(t, u, "since=4&epoch="+p.Epoch); p4.Next != 4 || len(p4.Revocations) != 0 || p4.More {
		t.Fatalf("nothing newer: %+v", p4)
	}
	// ...and with a wait, the page of the next addition as soon as it is made.
	go func() {
		time.Sleep(50 * time.Millisecond)
		feed.Add(token("d"))
	}()
	start := time.Now()
	if _, p5 := getPage(t, u, "since=4&wait=20s&epoch="+p.Epoch); p5.Next != 5 || len(p5.Revocations) != 1 || p5.Revocations[0].TokenID != "d" || time.Since(start) > 10*time.Second {
		t.Fatalf("long poll: %+v after %v", p5, time.Since(start))
	}
	for _, tc := range []struct {
		method, query string
		status        int
		want          string
	}{
		{http.MethodPost, "since=0", http.StatusMethodNotAllowed, `{"error":"invalid_request","error_description":"the revocation feed answers GET"}`},
		{http.MethodGet, "since=x", http.StatusBadRequest, `{"error":"invalid_request","error_description":"since is not a number of revocations"}`},
		{http.MethodGet, "since=-1", http.StatusBadRequest, `{"error":"invalid_request","error_description":"since is not a number of revocations"}`},
		{http.MethodGet, "wait=forever", http.StatusBadRequest, `{"error":"invalid_request","error_description":"wait is not a duration such as \"5s\""}`},
	} {
		req, _ := http.NewRequest(tc.method, u+"?"+tc.query, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || string(body) != tc.want || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s ?%s: %d %s, want %d %s", tc.method, tc.query, res.StatusCode, body, tc.status, tc.want)
		}
	}
	if err := feed.Add(revocation.Revocation{Issuer: "https://other.test", TokenID: "x", Expires: time.Now().Add(time.Hour)}); err == nil ||
		!strings.Contains(err.Error(), `is of issuer "https://other.test", not the feed's`) {
		t.Fatalf("Add of another issuer's revocation = %v", err)
	}
}

// Expired revocations leave the feed by themselves.
func TestFeedExpiry(t *testing.T) {
	t.Parallel()
	clock := jwttest.NewClock(time.Now())
	feed, u := newFeed(t, revocation.WithFeedClock(clock.Now))
	if err := feed.Add(revocation.Revocation{Issuer: iss, TokenID: "short", Expires: clock.Now().Add(time.Minute)}, token("long")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute + time.Second) // expiries are whole seconds, rounded up
	if _, p := getPage(t, u, "since=0"); len(p.Revocations) != 1 || p.Revocations[0].TokenID != "long" || p.Next != 2 {
		t.Fatalf("page %+v, want the unexpired revocation only", p)
	}
	clock.Advance(time.Second)
	feed.Add(token("later")) // compacts, a minute after the last time
	if feed.Len() != 2 {
		t.Fatalf("Len = %d after compaction, want 2", feed.Len())
	}
}

// Three replicas following one feed learn of a revocation within a
// second; one that starts later reads every revocation before it is
// ready, across pages.
func TestFeedFollowers(t *testing.T) {
	t.Parallel()
	feed, u := newFeed(t, revocation.WithFeedPageSize(3))
	for i := range 10 {
		if err := feed.Add(token(fmt.Sprintf("early-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var sets []*revocation.Set
	for range 3 {
		set := newSet(t, revocation.WithFeed(iss, u), revocation.WithStaleness(2*time.Second))
		ready(t, set)
		sets = append(sets, set)
	}
	for _, set := range sets {
		for i := range 10 {
			if !set.Revoked(iss, fmt.Sprintf("early-%d", i), "c", time.Now()) {
				t.Fatalf("early-%d not revoked once ready", i)
			}
		}
		if err := set.Err(); err != nil {
			t.Fatalf("Err = %v, want fresh", err)
		}
	}
	p50, p99 := propagation(t, sets, func(jti string) error { return feed.Add(token(jti)) })
	t.Logf("feed: a revocation reached 3 replicas in p50 %v, p99 %v (100 revocations)", p50, p99)
	if p99 > time.Second {
		t.Fatalf("p99 propagation %v, want under a second", p99)
	}
}

// propagation makes 100 revocations and returns the median and 99th
// percentile time until every set holds each.
func propagation(t *testing.T, sets []*revocation.Set, revoke func(jti string) error) (p50, p99 time.Duration) {
	t.Helper()
	var times []time.Duration
	for i := range 100 {
		jti := fmt.Sprintf("measured-%d-%d", i, time.Now().UnixNano())
		start := time.Now()
		if err := revoke(jti); err != nil {
			t.Fatal(err)
		}
		for _, set := range sets {
			for !set.Revoked(iss, jti, "c", start) {
				if time.Since(start) > 5*time.Second {
					t.Fatalf("revocation %d not propagated within 5s", i)
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times[49], times[98]
}

// ready waits for the set to load.
func ready(t testing.TB, set *revocation.Set) {
	t.Helper()
	ctx, cancel := contextWithTimeout(t, 10*time.Second)
	defer cancel()
	if err := set.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// A feed that restarts (a new epoch) is read again from the start; one
// that stops answering makes the set stale, with the reason, until it is
// back.
func TestFeedRestartAndStaleness(t *testing.T) {
	t.Parallel()
	first, err := revocation.NewFeed(iss)
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[revocation.Feed]
	current.Store(first)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		current.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	clock := jwttest.NewClock(time.Now())
	set := newSet(t, revocation.WithFeed(iss, srv.URL+"/revocations"), revocation.WithClock(clock.Now),
		revocation.WithStaleness(400*time.Millisecond), revocation.WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond))
	ready(t, set)
	if err := first.Add(token("before-restart")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the first revocation", func() bool { return set.Revoked(iss, "before-restart", "", time.Time{}) })

	// The issuer restarts with a feed that holds what it recorded.
	second, err := revocation.NewFeed(iss)
	if err != nil {
		t.Fatal(err)
	}
	second.Add(token("before-restart"), token("after-restart"))
	current.Store(second)
	first.Add(token("wake")) // ends the follower's wait on the old feed
	eventually(t, 5*time.Second, "the revocation of the new feed", func() bool { return set.Revoked(iss, "after-restart", "", time.Time{}) })

	// Down: stale once the staleness has passed, naming the failure.
	down.Store(true)
	eventually(t, 5*time.Second, "a failed attempt", func() bool {
		clock.Advance(100 * time.Millisecond)
		err := set.Err()
		return err != nil && strings.Contains(err.Error(), "503 Service Unavailable")
	})
	err = set.Err()
	if !strings.HasPrefix(err.Error(), "revocations stale: feed "+srv.URL+"/revocations: no answer for ") || set.Fresh() {
		t.Fatalf("Err = %v", err)
	}
	if set.Ready() != nil || !set.Loaded() {
		t.Fatal("a stale set stopped being ready: staleness is reported, not a reason to stop serving")
	}
	down.Store(false)
	eventually(t, 5*time.Second, "fresh again", set.Fresh)
}

// The feed's URL may come from the issuer's metadata; an issuer whose
// metadata names none has nothing to follow, and the set is ready.
func TestDiscoveredFeed(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	withFeed, err := revocation.NewFeed(srv.URL + "/with")
	if err != nil {
		t.Fatal(err)
	}
	withFeed.Add(revocation.Revocation{Issuer: srv.URL + "/with", TokenID: "j", Expires: time.Now().Add(time.Hour)})
	mux.Handle("/with/revocations", withFeed)
	mux.HandleFunc("/.well-known/oauth-authorization-server/with", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"revocation_feed_endpoint":%q}`, srv.URL+"/with", srv.URL+"/with/revocations")
	})
	mux.HandleFunc("/without/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q}`, srv.URL+"/without")
	})
	mux.HandleFunc("/.well-known/oauth-authorization-server/liar", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"issuer":"https://someone.else"}`)
	})

	set := newSet(t, revocation.WithDiscoveredFeed(srv.URL+"/with"), revocation.WithDiscoveredFeed(srv.URL+"/without"))
	ready(t, set)
	if !set.Revoked(srv.URL+"/with", "j", "", time.Time{}) || !set.Fresh() {
		t.Fatalf("discovered feed not followed: fresh %v", set.Err())
	}
	liar := newSet(t, revocation.WithDiscoveredFeed(srv.URL+"/liar"))
	eventually(t, 5*time.Second, "the discovery failure", func() bool {
		err := liar.Ready()
		return err != nil && strings.Contains(err.Error(), `metadata names issuer https://someone.else`)
	})
	if liar.Loaded() {
		t.Fatal("a set whose feed cannot be found is loaded")
	}
}

// A feed answering for another issuer is not followed: its revocations
// would revoke that issuer's tokens.
func TestFeedOfAnotherIssuer(t *testing.T) {
	t.Parallel()
	_, u := newFeed(t)
	set := newSet(t, revocation.WithFeed("https://another.test", u))
	eventually(t, 5*time.Second, "the refusal", func() bool {
		err := set.Ready()
		return err != nil && strings.Contains(err.Error(), `the feed is of issuer "https://issuer.test"`)
	})
}

// A closed feed answers at once those waiting for news, and does not let
// new requests wait: a server shutting down is not held up.
func TestFeedClose(t *testing.T) {
	t.Parallel()
	feed, u := newFeed(t)
	_, p := getPage(t, u, "since=0")
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		getPage(t, u, "since=0&wait=30s&epoch="+p.Epoch)
		done <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond)
	feed.Close()
	if d := <-done; d > 10*time.Second {
		t.Fatalf("a waiting request answered %v after Close", d)
	}
	start := time.Now()
	getPage(t, u, "since=0&wait=30s&epoch="+p.Epoch)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a request after Close waited %v", d)
	}
}

// Sources that load at once, while the set is still being made, each see
// the whole list of sources: the set is loaded only when all are.
func TestSourcesLoadingAtOnce(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var opts []revocation.Option
	for i := range 16 {
		name := fmt.Sprintf("/i%d", i)
		mux.HandleFunc("/.well-known/oauth-authorization-server"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q}`, srv.URL+name)
		})
		opts = append(opts, revocation.WithDiscoveredFeed(srv.URL+name))
	}
	for range 5 {
		set := newSet(t, opts...)
		ready(t, set)
		if !set.Loaded() || set.Ready() != nil {
			t.Fatalf("ready but not loaded: %v", set.Ready())
		}
	}
}
