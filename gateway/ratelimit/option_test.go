package ratelimit_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/internal/redistest"
)

// TestConstructorsReportInvalidOptions passes each constructor option
// values it cannot use: each must fail, naming the value.
func TestConstructorsReportInvalidOptions(t *testing.T) {
	t.Parallel()
	cat := compiledCatalog(t)
	client := redis.NewClient(&redis.Options{Addr: redistest.SharedAddr})
	t.Cleanup(func() { _ = client.Close() })
	memory := newMemory(t)
	tests := []struct {
		name string
		new  func() error
		want string
	}{
		{"memory: negative max keys", func() error { _, err := ratelimit.NewMemory(ratelimit.WithMaxKeys(-1)); return err }, "max keys -1"},
		{"memory: zero max keys", func() error { _, err := ratelimit.NewMemory(ratelimit.WithMaxKeys(0)); return err }, "max keys 0"},
		{"memory: zero cleanup interval", func() error {
			_, err := ratelimit.NewMemory(ratelimit.WithCleanupInterval(0))
			return err
		}, "cleanup interval 0s"},
		{"redis: zero timeout", func() error { _, err := ratelimit.NewRedis(client, ratelimit.WithTimeout(0)); return err }, "timeout 0s"},
		{"redis: negative timeout", func() error { _, err := ratelimit.NewRedis(client, ratelimit.WithTimeout(-time.Second)); return err }, "timeout -1s"},
		{"redis: zero probe interval", func() error { _, err := ratelimit.NewRedis(client, ratelimit.WithProbeInterval(0)); return err }, "probe interval 0s"},
		{"redis: zero failure threshold", func() error {
			_, err := ratelimit.NewRedis(client, ratelimit.WithFailureThreshold(0))
			return err
		}, "failure threshold 0"},
		{"redis: unknown failure policy", func() error {
			_, err := ratelimit.NewRedis(client, ratelimit.WithFailurePolicy(7))
			return err
		}, "unknown failure policy 7"},
		{"interceptor: IPv6 prefix 200", func() error {
			_, err := ratelimit.NewInterceptor(cat, memory, ratelimit.WithIPv6Prefix(200))
			return err
		}, "IPv6 prefix of 200 bits"},
		{"interceptor: IPv6 prefix 0", func() error {
			_, err := ratelimit.NewInterceptor(cat, memory, ratelimit.WithIPv6Prefix(0))
			return err
		}, "IPv6 prefix of 0 bits"},
		{"interceptor: zero network", func() error {
			_, err := ratelimit.NewInterceptor(cat, memory, ratelimit.WithTrustedProxies(netip.Prefix{}))
			return err
		}, "trusted proxies: invalid network"},
		{"guard: no failures", func() error { _, err := ratelimit.NewGuard(ratelimit.WithFailureBudget(0, time.Second)); return err }, "failure budget of 0 per 1s"},
		{"guard: no period", func() error { _, err := ratelimit.NewGuard(ratelimit.WithFailureBudget(5, 0)); return err }, "failure budget of 5 per 0s"},
		{"guard: zero cool-down", func() error { _, err := ratelimit.NewGuard(ratelimit.WithCooldown(0)); return err }, "cool-down 0s"},
		{"guard: zero max addresses", func() error { _, err := ratelimit.NewGuard(ratelimit.WithMaxAddresses(0)); return err }, "max addresses 0"},
		{"guard: IPv6 prefix 129", func() error { _, err := ratelimit.NewGuard(ratelimit.WithIPv6Prefix(129)); return err }, "IPv6 prefix of 129 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.new(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestConstructorsAcceptDefaults(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: redistest.SharedAddr})
	t.Cleanup(func() { _ = client.Close() })
	memory, err := ratelimit.NewMemory(ratelimit.WithMaxKeys(1), ratelimit.WithCleanupInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = memory.Close() })
	store, err := ratelimit.NewRedis(client, ratelimit.WithTimeout(time.Nanosecond), ratelimit.WithProbeInterval(time.Nanosecond), ratelimit.WithFailureThreshold(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := ratelimit.NewInterceptor(compiledCatalog(t), memory, ratelimit.WithIPv6Prefix(1), ratelimit.WithIPv6Prefix(128)); err != nil {
		t.Fatal(err)
	}
	guard, err := ratelimit.NewGuard(ratelimit.WithFailureBudget(1, time.Nanosecond), ratelimit.WithCooldown(time.Nanosecond), ratelimit.WithMaxAddresses(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = guard.Close() })
}
