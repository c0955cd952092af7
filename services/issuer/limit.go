package issuer

import (
	"crypto/sha256"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failureLimiter counts failed authentications per key with a token bucket
// each: a key may fail burst times at once, then once per interval. It
// tracks at most limiterKeys keys; a bucket that has refilled is forgotten
// when room is needed, since it holds nothing a fresh one would not.
type failureLimiter struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
}

func newFailureLimiter(burst int, interval time.Duration) *failureLimiter {
	return &failureLimiter{limit: rate.Every(interval), burst: burst, keys: make(map[string]*rate.Limiter)}
}

// wait returns how long key must wait before its next attempt, or 0.
func (l *failureLimiter) wait(key string, now time.Time) time.Duration {
	l.mu.Lock()
	lim := l.keys[key]
	l.mu.Unlock()
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(l.limit) * float64(time.Second)))
}

// fail records a failed attempt of key.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	lim := l.keys[key]
	if lim == nil {
		if len(l.keys) >= limiterKeys {
			l.sweep(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.keys[key] = lim
	}
	l.mu.Unlock()
	lim.AllowN(now, 1)
}

// sweep forgets refilled buckets and, if that is not enough, arbitrary
// ones. Called with l.mu held.
func (l *failureLimiter) sweep(now time.Time) {
	for k, lim := range l.keys {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.keys, k)
		}
	}
	for k := range l.keys {
		if len(l.keys) < limiterKeys {
			break
		}
		delete(l.keys, k)
	}
}

// clientKey is the limiter key of a client id: a digest, so that the
// limiter holds no caller-chosen strings of any length.
func clientKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return string(sum[:16])
}

// addrKey is the limiter key of a source address: IPv4 addresses are
// limited one by one, IPv6 addresses per /64, since one host commonly
// holds a whole /64. An unknown address shares the key "".
func addrKey(a netip.Addr, ok bool) string {
	if !ok || !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return string(a.AsSlice())
}
