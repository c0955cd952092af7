package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/redistest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// replica is what a gateway replica checks tokens with: its own verifier
// and revocation set.
type replica struct {
	v   *token.Verifier
	set *revocation.Set
}

// newReplica starts a replica trusting the issuer, its revocations coming
// from source, and waits until it is ready.
func newReplica(t testing.TB, iss *issuertest.Issuer, source revocation.Option) *replica {
	t.Helper()
	set, err := revocation.New(t.Context(), source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{Issuer: iss.URL, Audiences: []string{issuertest.Audience}, Discover: true}},
		token.WithRevocations(set))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := errors.Join(v.WaitReady(ctx), set.WaitReady(ctx)); err != nil {
		t.Fatal(err)
	}
	return &replica{v: v, set: set}
}

// refusedWithin waits until d after start for every replica to refuse raw
// as revoked, and returns how long after start they all did.
func refusedWithin(t testing.TB, replicas []*replica, raw string, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	for i, r := range replicas {
		for {
			_, err := r.v.Verify(context.Background(), raw)
			if errors.Is(err, token.ErrRevoked) {
				break
			}
			if err != nil {
				t.Fatalf("replica %d: %v, want the token revoked", i, err)
			}
			if time.Since(start) > d {
				t.Fatalf("replica %d still accepts the token after %v", i, d)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	return time.Since(start)
}

// acceptedBy checks that every replica accepts raw, twice: the second
// time from its cache.
func acceptedBy(t testing.TB, replicas []*replica, raw string) {
	t.Helper()
	for i, r := range replicas {
		for range 2 {
			if _, err := r.v.Verify(context.Background(), raw); err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
		}
		if !r.v.Cached(raw) {
			t.Fatalf("replica %d did not cache the token", i)
		}
	}
}

// Three replicas, each with its own verifier, cache and revocation set,
// accept a token; after "portcullis clients revoke" (the code the command
// runs, against the registry of a running issuer), and separately after
// an RFC 7009 revocation, all three refuse it within a second, from their
// caches too; a replica started afterwards refuses both at its first
// call. Through Redis, and through the issuer's feed.
func TestRevocationReachesEveryReplica(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"redis", "feed"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			opts := []issuer.Option{issuer.WithRevocationPollInterval(50 * time.Millisecond)}
			var source func() revocation.Option
			if via == "redis" {
				client, prefix := redistest.Shared(t)
				store, err := revocation.NewRedis(client, revocation.WithPrefix(prefix))
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, issuer.WithRevocationStore(store))
				source = func() revocation.Option {
					r, err := revocation.NewRedis(redistest.Client(t, redistest.SharedAddr), revocation.WithPrefix(prefix))
					if err != nil {
						t.Fatal(err)
					}
					return revocation.WithRedis(r)
				}
			}
			iss := issuertest.Start(t, newCatalog(t), opts...)
			if via == "feed" {
				source = func() revocation.Option { return revocation.WithDiscoveredFeed(iss.URL) }
			}
			readerSecret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
			writerSecret := iss.AddClient(t, issuer.Client{ID: "writer", Grants: []string{"ORD.WRITE"}})
			var replicas []*replica
			for range 3 {
				replicas = append(replicas, newReplica(t, iss, source()))
			}

			// clients revoke.
			readers := iss.Token(t, "reader", readerSecret)
			acceptedBy(t, replicas, readers)
			start := time.Now()
			if err := issuer.RevokeClient(iss.RegistryPath, "reader"); err != nil {
				t.Fatal(err)
			}
			took := refusedWithin(t, replicas, readers, start, time.Second)
			t.Logf("%s: clients revoke refused on 3 replicas after %v", via, took)

			// RFC 7009.
			writers := iss.Token(t, "writer", writerSecret)
			acceptedBy(t, replicas, writers)
			start = time.Now()
			if res := revokeRequest(t, iss.URL, "writer", writerSecret, "token="+url.QueryEscape(writers)); res.status != 200 {
				t.Fatalf("revoke: %d %s", res.status, res.body)
			}
			took = refusedWithin(t, replicas, writers, start, time.Second)
			t.Logf("%s: RFC 7009 revocation refused on 3 replicas after %v", via, took)

			// A replica started afterwards.
			late := newReplica(t, iss, source())
			for _, raw := range []string{readers, writers} {
				if _, err := late.v.Verify(context.Background(), raw); !errors.Is(err, token.ErrRevoked) {
					t.Fatalf("a replica started after the revocations: %v, want the token revoked", err)
				}
			}
			// The writer's other tokens still work.
			acceptedBy(t, append(replicas, late), iss.Token(t, "writer", writerSecret))
		})
	}
}

// BenchmarkRevocationPropagation measures the time from an RFC 7009
// revocation request until three replicas refuse the token, over
// b.N revocations, through Redis and through the feed. Run with
// -benchtime=100x: it reports p50 and p99.
func BenchmarkRevocationPropagation(b *testing.B) {
	for _, via := range []string{"redis", "feed"} {
		b.Run(via, func(b *testing.B) {
			var source func() revocation.Option
			var opts []issuer.Option
			if via == "redis" {
				client, prefix := redistest.Shared(b)
				store, err := revocation.NewRedis(client, revocation.WithPrefix(prefix))
				if err != nil {
					b.Fatal(err)
				}
				opts = append(opts, issuer.WithRevocationStore(store))
				source = func() revocation.Option {
					r, err := revocation.NewRedis(redistest.Client(b, redistest.SharedAddr), revocation.WithPrefix(prefix))
					if err != nil {
						b.Fatal(err)
					}
					return revocation.WithRedis(r)
				}
			}
			iss := issuertest.Start(b, newCatalog(b), opts...)
			if via == "feed" {
				source = func() revocation.Option { return revocation.WithDiscoveredFeed(iss.URL) }
			}
			secret := iss.AddClient(b, issuer.Client{ID: "c", Grants: []string{"ORD.READ"}})
			var replicas []*replica
			for range 3 {
				replicas = append(replicas, newReplica(b, iss, source()))
			}
			var times []time.Duration
			for b.Loop() {
				b.StopTimer()
				raw := iss.Token(b, "c", secret)
				acceptedBy(b, replicas, raw)
				b.StartTimer()
				start := time.Now()
				if res := revokeRequest(b, iss.URL, "c", secret, "token="+url.QueryEscape(raw)); res.status != 200 {
					b.Fatalf("revoke: %d %s", res.status, res.body)
				}
				times = append(times, refusedWithin(b, replicas, raw, start, 5*time.Second))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(times[(len(times)*99)/100].Microseconds()), "p99-µs")
			b.Log(fmt.Sprintf("%s: %d revocations to 3 replicas: p50 %v, p99 %v", via, len(times), times[len(times)/2], times[(len(times)*99)/100]))
		})
	}
}

// A revocation made while Redis is down is served in the feed at once,
// and published to Redis when it is back.
func TestRevocationPublishedAfterRedisOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := redistest.Client(t, srv.Addr())
	store, err := revocation.NewRedis(client, revocation.WithPrefix("rv:"), revocation.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithRevocationStore(store), issuer.WithRevocationPollInterval(20*time.Millisecond))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := iss.Token(t, "reader", secret)
	srv.Stop()
	if res := revokeRequest(t, iss.URL, "reader", secret, "token="+url.QueryEscape(tok)); res.status != 200 {
		t.Fatalf("revoke with Redis down: %d %s", res.status, res.body)
	}
	if got := feedOf(t, iss.URL); len(got) != 1 {
		t.Fatalf("feed %+v, want the revocation", got)
	}
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		members, _ := client.ZRange(context.Background(), "rv:set", 0, -1).Result()
		if len(members) == 1 {
			if r, err := revocation.Unmarshal([]byte(members[0]), ""); err != nil || r.TokenID != claimsOf(t, tok).ID || r.Issuer != iss.URL {
				t.Fatalf("in Redis: %s, %v", members[0], err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation was not published once Redis was back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
