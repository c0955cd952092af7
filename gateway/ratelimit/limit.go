package ratelimit

import (
	"fmt"
	"math"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// Limit is a rate: on average Requests per Period, and up to Burst at once.
// The zero Limit means no limit.
type Limit struct {
	// Requests admitted per Period; at least 1.
	Requests int
	// Period over which Requests are admitted; positive.
	Period time.Duration
	// Burst is how many requests may arrive at once; at least 1.
	Burst int
}

// FromCatalog returns the Limit that a method declares, or the zero Limit
// when rl is nil. A Burst of 0 means 1, as in the vocabulary.
func FromCatalog(rl *catalog.RateLimit) Limit {
	if rl == nil {
		return Limit{}
	}
	return Limit{Requests: int(rl.Requests), Period: rl.Period, Burst: max(int(rl.Burst), 1)}
}

// IsZero reports whether l is the zero Limit: no limit.
func (l Limit) IsZero() bool { return l == Limit{} }

// Valid reports whether l can be enforced: Requests and Burst at least 1 and
// a positive Period. Stores refuse other limits.
func (l Limit) Valid() bool { return l.Requests >= 1 && l.Period > 0 && l.Burst >= 1 }

// Interval returns the emission interval, Period/Requests: the time one
// request's share of the budget takes to come back. It is at least 1ns.
func (l Limit) Interval() time.Duration {
	if l.Requests < 1 {
		return l.Period
	}
	return max(l.Period/time.Duration(l.Requests), 1)
}

// String returns the limit in words, such as "100 per 1m0s, burst 20".
func (l Limit) String() string {
	if l.IsZero() {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %s, burst %d", l.Requests, l.Period, l.Burst)
}

// scale multiplies the rate and the burst by m, keeping each at least 1.
func (l Limit) scale(m float64) Limit {
	if l.IsZero() || m == 1 {
		return l
	}
	mul := func(v int) int {
		return int(min(max(math.Round(float64(v)*m), 1), math.MaxUint32))
	}
	return Limit{Requests: mul(l.Requests), Period: l.Period, Burst: mul(l.Burst)}
}

// Result is one decision.
type Result struct {
	// Allowed reports whether the request was admitted. A denied request
	// consumes nothing.
	Allowed bool
	// Limit is the limit the decision applied.
	Limit Limit
	// Remaining is how many more requests of cost 1 would be admitted right
	// now, after this one.
	Remaining int
	// RetryAfter is how long to wait before the same request would be
	// admitted; 0 when it was.
	RetryAfter time.Duration
	// ResetAfter is how long until the key's full burst is available again,
	// that is, until the limiter forgets the key.
	ResetAfter time.Duration
}

// nextAfter is how long until a request of cost 1 is admitted: 0 while
// Remaining is positive.
func (r Result) nextAfter() time.Duration {
	switch {
	case !r.Allowed:
		return r.RetryAfter
	case r.Remaining > 0:
		return 0
	}
	interval := int64(r.Limit.Interval())
	wait := time.Duration(int64(r.ResetAfter) + interval - saturatingMul(interval, r.Limit.Burst))
	return max(wait, 0)
}

// maxSpan bounds every duration the algorithm adds to a time (about 36
// years), so that nanosecond Unix times never overflow.
const maxSpan = int64(1) << 60

func saturatingMul(a int64, b int) int64 {
	if b <= 0 {
		return 0
	}
	if a > maxSpan/int64(b) {
		return maxSpan
	}
	return a * int64(b)
}

// gcra applies the generic cell rate algorithm at time now (Unix
// nanoseconds) to a key whose theoretical arrival time is tat (0 for a key
// not seen or forgotten), for a request of cost n. It returns the key's new
// theoretical arrival time, to store when the request is allowed. l must be
// valid.
//
// The key is one number: the time at which its budget would be fully
// spent if requests had arrived at exactly the steady rate. A request of
// cost n moves it n intervals later, and is allowed if that moved time lies
// no further ahead of now than the burst tolerance, Burst intervals.
func gcra(tat, now int64, l Limit, n int) (int64, Result) {
	interval := int64(l.Interval())
	tolerance := saturatingMul(interval, l.Burst)
	tat = max(tat, now)
	newTAT := tat + saturatingMul(interval, max(n, 0))
	if allowAt := newTAT - tolerance; now < allowAt {
		return tat, Result{
			Limit:      l,
			Remaining:  int(max(tolerance-(tat-now), 0) / interval),
			RetryAfter: time.Duration(allowAt - now),
			ResetAfter: time.Duration(tat - now),
		}
	}
	return newTAT, Result{
		Allowed:    true,
		Limit:      l,
		Remaining:  int((tolerance - (newTAT - now)) / interval),
		ResetAfter: time.Duration(newTAT - now),
	}
}
