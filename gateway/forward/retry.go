package forward

import (
	"sync"
	"time"
)

// RetryPolicy says when the gateway sends a call again to another
// endpoint. Only calls a retry cannot harm are retried: unary methods
// declared idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT, whose request
// is at most MaxBodyBytes (it is held in memory anyway), when the attempt
// found its endpoint unreachable (a refused connection, or one reset or
// lost before the whole answer came: the gateway holds a unary answer
// whole before the client gets any byte of it). An error the backend
// sent, even Unavailable, is the answer, and a call whose deadline has
// passed is not tried again. Each retry goes to an endpoint the call has
// not tried, and a retried answer carries [RetriesHeader]. A retry budget keeps an outage from multiplying the load:
// over the last Window, retries may be BudgetRatio of the calls that
// could be retried, plus MinPerSecond in each second.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of one call, the first included,
	// each on another endpoint; 1 turns retries off. At most 8.
	MaxAttempts int
	// MaxBodyBytes is the largest request retried.
	MaxBodyBytes int
	// BudgetRatio is the share of calls that may be retries, over Window.
	BudgetRatio float64
	// MinPerSecond retries are allowed in any second, whatever the ratio,
	// so that a quiet backend can still retry.
	MinPerSecond int
	// Window is the period over which calls and retries are counted.
	Window time.Duration
}

// DefaultRetryPolicy is the policy of a Backend without [WithRetries]:
// up to three attempts, requests up to 64 KiB, retries at most 20% of
// calls over ten seconds, plus ten a second.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:  3,
	MaxBodyBytes: 64 << 10,
	BudgetRatio:  0.2,
	MinPerSecond: 10,
	Window:       10 * time.Second,
}

// WithRetries sets when calls are retried on another endpoint. MaxAttempts
// must be between 1 and 8, MaxBodyBytes and MinPerSecond not negative,
// BudgetRatio between 0 and 1, Window at least a second. The default is
// [DefaultRetryPolicy].
func WithRetries(p RetryPolicy) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		switch {
		case p.MaxAttempts < 1 || p.MaxAttempts > maxAttempts:
			c.invalid("WithRetries: MaxAttempts %d is not between 1 and %d", p.MaxAttempts, maxAttempts)
		case p.MaxBodyBytes < 0 || p.MinPerSecond < 0:
			c.invalid("WithRetries: MaxBodyBytes and MinPerSecond must not be negative")
		case p.BudgetRatio < 0 || p.BudgetRatio > 1:
			c.invalid("WithRetries: BudgetRatio %v is not between 0 and 1", p.BudgetRatio)
		case p.Window < time.Second:
			c.invalid("WithRetries: Window %v is under a second", p.Window)
		default:
			c.retry = p
		}
	})
}

// retryBudget counts calls and retries in one-second buckets over the
// policy's window. Only calls that could be retried take its lock.
type retryBudget struct {
	ratio  float64
	min    int64
	mu     sync.Mutex
	bucket []budgetBucket // ring, by second
}

type budgetBucket struct {
	second         int64
	calls, retries int64
}

func (r *retryBudget) init(p RetryPolicy) {
	r.ratio, r.min = p.BudgetRatio, int64(p.MinPerSecond)
	r.bucket = make([]budgetBucket, max(int(p.Window/time.Second), 1))
}

// current returns the bucket of now's second, emptied if it held an
// older second. The caller holds r.mu.
func (r *retryBudget) current(now time.Time) *budgetBucket {
	s := now.Unix()
	b := &r.bucket[int(s%int64(len(r.bucket)))]
	if b.second != s {
		*b = budgetBucket{second: s}
	}
	return b
}

// call counts a call that could be retried.
func (r *retryBudget) call(now time.Time) {
	r.mu.Lock()
	r.current(now).calls++
	r.mu.Unlock()
}

// retry reports whether one more retry is within the budget, and counts
// it if so.
func (r *retryBudget) retry(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.current(now)
	var calls, retries int64
	oldest := now.Unix() - int64(len(r.bucket))
	for i := range r.bucket {
		if b := &r.bucket[i]; b.second > oldest {
			calls += b.calls
			retries += b.retries
		}
	}
	if cur.retries < r.min || float64(retries+1) <= r.ratio*float64(calls) {
		cur.retries++
		return true
	}
	return false
}
