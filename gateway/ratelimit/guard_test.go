package ratelimit_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/ratelimit"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

const (
	forgedToken = "eyJhbGciOiJFUzI1NiJ9.forged.c2ln"
	goodToken   = "good"
)

// guardFixture serves OrdersService behind a guard that wraps a gate
// standing in for authentication: it refuses the forged token with
// Unauthenticated, "denied" with PermissionDenied, and admits "good".
type guardFixture struct {
	url   string
	http  *http.Client
	clock *testClock
	guard *ratelimit.Guard
	inner atomic.Int64 // calls of the wrapped gate
}

func newGuardFixture(t *testing.T, opts ...ratelimit.GuardOption) *guardFixture {
	t.Helper()
	f := &guardFixture{http: h2ctest.Client(t), clock: newClock()}
	guard, err := ratelimit.NewGuard(append([]ratelimit.GuardOption{
		ratelimit.WithClock(f.clock.Now),
		ratelimit.WithFailureBudget(5, time.Minute),
		ratelimit.WithCooldown(30 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = guard.Close() })
	f.guard = guard
	authenticate := func(ctx context.Context, _ connect.Spec, _ connect.Peer, h http.Header) (context.Context, error) {
		f.inner.Add(1)
		switch h.Get("Authorization") {
		case "Bearer " + goodToken:
			return ctx, nil
		case "Bearer denied":
			return nil, connect.NewError(connect.CodePermissionDenied, nil)
		}
		return nil, connect.NewError(connect.CodeUnauthenticated, nil)
	}
	mux := http.NewServeMux()
	mux.Handle(ordersv1connect.NewOrdersServiceHandler(orders{}, connect.WithRequestGate(guard.Wrap(authenticate))))
	f.url = h2ctest.Start(t, mux).URL
	return f
}

// call calls GetOrder with a bearer token, from the client address xff
// forwards for when not empty.
func (f *guardFixture) call(t *testing.T, bearer, xff string, opts ...connect.ClientOption) error {
	t.Helper()
	req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"})
	req.Header().Set("Authorization", "Bearer "+bearer)
	if xff != "" {
		req.Header().Set("X-Forwarded-For", xff)
	}
	_, err := ordersv1connect.NewOrdersServiceClient(f.http, f.url, opts...).GetOrder(context.Background(), req)
	return err
}

func wantGuardRefusal(t *testing.T, protocol string, err error, retry time.Duration) {
	t.Helper()
	cerr := wantCode(t, err, connect.CodeResourceExhausted, "too many failed authentications from this address: retry in "+retry.String())
	if strings.Contains(cerr.Error(), forgedToken) {
		t.Errorf("the refusal echoes the token: %v", cerr)
	}
	wantValues(t, cerr.Meta(), "Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	wantDetails(t, connectDetails(t, cerr), wantedDetails{
		reason:   ratelimit.ReasonAuthFailures,
		metadata: map[string]string{"procedure": getOrder},
		retry:    retry,
	})
	wantPushback(t, protocol, cerr.Meta(), strconv.FormatInt(retry.Milliseconds(), 10))
}

func TestGuardRefusesAfterTheBudget(t *testing.T) {
	t.Parallel()
	for _, protocol := range protocols {
		t.Run(protocol.name, func(t *testing.T) {
			t.Parallel()
			f := newGuardFixture(t)
			for i := range 5 {
				wantCode(t, f.call(t, forgedToken, "", protocol.opts...), connect.CodeUnauthenticated, "")
				if got := f.inner.Load(); got != int64(i+1) {
					t.Fatalf("after %d forged tokens, the gate ran %d times", i+1, got)
				}
			}
			// The budget is spent: the gate does not run any more, for
			// forged tokens or good ones.
			for range 20 {
				wantGuardRefusal(t, protocol.name, f.call(t, forgedToken, "", protocol.opts...), 30*time.Second)
			}
			wantGuardRefusal(t, protocol.name, f.call(t, goodToken, "", protocol.opts...), 30*time.Second)
			if got := f.inner.Load(); got != 5 {
				t.Fatalf("the gate ran %d times, want 5", got)
			}
		})
	}
}

func TestGuardCooldownEnds(t *testing.T) {
	t.Parallel()
	f := newGuardFixture(t)
	for range 5 {
		wantCode(t, f.call(t, forgedToken, ""), connect.CodeUnauthenticated, "")
	}
	f.clock.Advance(10 * time.Second)
	wantGuardRefusal(t, "connect", f.call(t, forgedToken, ""), 20*time.Second)
	f.clock.Advance(20*time.Second - time.Millisecond)
	wantGuardRefusal(t, "connect", f.call(t, forgedToken, ""), time.Millisecond)
	f.clock.Advance(time.Millisecond)
	if err := f.call(t, goodToken, ""); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
	if got := f.inner.Load(); got != 6 {
		t.Fatalf("the gate ran %d times, want 6", got)
	}
}

func TestGuardCountsOnlyUnauthenticated(t *testing.T) {
	t.Parallel()
	f := newGuardFixture(t)
	for range 50 {
		wantCode(t, f.call(t, "denied", ""), connect.CodePermissionDenied, "")
		if err := f.call(t, goodToken, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.inner.Load(); got != 100 {
		t.Fatalf("the gate ran %d times, want 100", got)
	}
}

func TestGuardAddresses(t *testing.T) {
	t.Parallel()
	loopback := ratelimit.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8"))
	tests := []struct {
		name     string
		opts     []ratelimit.GuardOption
		attacker string // X-Forwarded-For of the forged tokens
		other    string // X-Forwarded-For of a good caller
		shared   bool   // whether they share the cool-down
	}{
		{name: "forwarded for, from a trusted proxy", opts: []ratelimit.GuardOption{loopback}, attacker: "203.0.113.7", other: "203.0.113.8"},
		{name: "forwarded for, from an untrusted peer: ignored", attacker: "203.0.113.7", other: "203.0.113.8", shared: true},
		{name: "spoofed leftmost entries", opts: []ratelimit.GuardOption{loopback}, attacker: "1.1.1.1, 203.0.113.7", other: "1.1.1.2, 203.0.113.7", shared: true},
		{name: "one IPv6 /64", opts: []ratelimit.GuardOption{loopback}, attacker: "2001:db8:1:2::1", other: "2001:db8:1:2:ffff::9", shared: true},
		{name: "two IPv6 /64", opts: []ratelimit.GuardOption{loopback}, attacker: "2001:db8:1:2::1", other: "2001:db8:1:3::1"},
		{name: "IPv6 by /128", opts: []ratelimit.GuardOption{loopback, ratelimit.WithIPv6Prefix(128)}, attacker: "2001:db8:1:2::1", other: "2001:db8:1:2::2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newGuardFixture(t, tt.opts...)
			for range 5 {
				wantCode(t, f.call(t, forgedToken, tt.attacker), connect.CodeUnauthenticated, "")
			}
			wantGuardRefusal(t, "connect", f.call(t, forgedToken, tt.attacker), 30*time.Second)
			err := f.call(t, goodToken, tt.other)
			if tt.shared {
				wantGuardRefusal(t, "connect", err, 30*time.Second)
			} else if err != nil {
				t.Fatalf("another address: %v", err)
			}
		})
	}
}

func TestGuardExempt(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	f := newGuardFixture(t, ratelimit.WithGuardExempt(func(_ context.Context, h http.Header) bool {
		asked.Add(1)
		return h.Get("Authorization") == "Bearer "+goodToken
	}))
	for range 5 {
		wantCode(t, f.call(t, forgedToken, ""), connect.CodeUnauthenticated, "")
	}
	if got := asked.Load(); got != 0 {
		t.Fatalf("the exemption was asked %d times before the cool-down", got)
	}
	for range 10 {
		wantGuardRefusal(t, "connect", f.call(t, forgedToken, ""), 30*time.Second)
		if err := f.call(t, goodToken, ""); err != nil {
			t.Fatalf("an exempt caller in the cool-down: %v", err)
		}
	}
	if got := f.inner.Load(); got != 5+10 {
		t.Fatalf("the gate ran %d times, want 15: the exempt calls only", got)
	}
}

func TestGuardBoundsAddresses(t *testing.T) {
	t.Parallel()
	f := newGuardFixture(t, ratelimit.WithMaxAddresses(64),
		ratelimit.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	for i := range 1000 {
		wantCode(t, f.call(t, forgedToken, "10."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+".1"), connect.CodeUnauthenticated, "")
	}
	if n := f.guard.Len(); n > 64 || n < 32 {
		t.Fatalf("Len = %d, want at most 64 and not far below", n)
	}
}
