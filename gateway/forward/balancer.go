package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Balancer chooses the endpoint of each call.
type Balancer int

// The balancers.
const (
	// RoundRobin sends calls to the usable endpoints in turn.
	RoundRobin Balancer = iota
	// LeastRequest picks two usable endpoints at random and sends the call
	// to the one with fewer calls in flight ("power of two choices"):
	// slow or overloaded replicas get less, and no global scan is needed.
	LeastRequest
)

// ParseBalancer returns the balancer named "round_robin" (or "", the
// default) or "least_request".
func ParseBalancer(name string) (Balancer, error) {
	switch name {
	case "", "round_robin":
		return RoundRobin, nil
	case "least_request":
		return LeastRequest, nil
	}
	return 0, errorf("balancer %q is not round_robin or least_request", name)
}

// String returns the balancer's configuration name.
func (b Balancer) String() string {
	if b == LeastRequest {
		return "least_request"
	}
	return "round_robin"
}

// RetriesHeader is the response header that tells a client how many times
// the gateway sent its call again, to another endpoint, before the answer
// it receives. It is absent when the first attempt was answered.
const RetriesHeader = "Portcullis-Retries"

// errNoEndpoint fails a call when DNS has resolved no address.
var errNoEndpoint = errors.New("no endpoint")

// maxAttempts bounds [RetryPolicy.MaxAttempts].
const maxAttempts = 8

// caller is the connect.HTTPClient of one method's outbound clients: it
// sends each call to an endpoint the balancer chooses, records the
// outcome for that endpoint, and sends the call again to another endpoint
// when it is safe (see [WithRetries]).
type caller struct {
	b *Backend
	// retry is true for the methods a retry cannot harm: unary, declared
	// NO_SIDE_EFFECTS or IDEMPOTENT.
	retry bool
}

// Do implements connect.HTTPClient. connect builds req for a URL whose
// host is a placeholder; Do points it at the chosen endpoint, one that
// the call (when it may be retried) has not tried yet.
func (c *caller) Do(req *http.Request) (*http.Response, error) {
	b := c.b
	ctx := req.Context()
	var at *attempts
	var tried []*endpoint
	if c.retry {
		if at, _ = ctx.Value(attemptsKey{}).(*attempts); at != nil {
			tried = at.tried[:at.n]
		}
	}
	e := b.pick(b.set.Load(), tried)
	if e == nil {
		return nil, errNoEndpoint
	}
	if at != nil && at.n < maxAttempts {
		at.tried[at.n] = e
		at.n++
	}
	path := req.URL.Path
	e.target(req, path)
	e.inflight.Add(1)
	e.requests.Add(1)
	res, err := e.pool.Do(req)
	if err != nil {
		e.inflight.Add(-1)
		if ctx.Err() == nil { // else the caller gave up: nothing learnt of the endpoint
			b.failed(ctx, e, path, err)
		}
		return nil, err
	}
	e.answered(ctx)
	res.Body = &endpointBody{ReadCloser: res.Body, e: e, b: b, ctx: ctx, path: path}
	return res, nil
}

// attemptsKey carries the *attempts of a call that may be retried.
type attemptsKey struct{}

// attempts are the endpoints a call has tried, in order.
type attempts struct {
	tried [maxAttempts]*endpoint
	n     int
}

// retryAgain reports whether a call that has made the attempts at may be
// sent again: it has attempts left, an endpoint it has not tried, and the
// budget allows one more retry, which is then counted.
func (b *Backend) retryAgain(at *attempts) bool {
	if at.n >= b.cfg.retry.MaxAttempts || !untried(b.set.Load().all, at.tried[:at.n]) || !b.budget.retry(time.Now()) {
		return false
	}
	b.retries.Add(1)
	return true
}

// mayRetry reports whether a unary call of size bytes may be retried at
// all, and if so counts it for the budget.
func (b *Backend) mayRetry(size int) bool {
	if b.cfg.retry.MaxAttempts < 2 || size > b.cfg.retry.MaxBodyBytes {
		return false
	}
	b.budget.call(time.Now())
	return true
}

// pick returns the endpoint of the next attempt: a usable one not in
// tried, or, when none is usable (every endpoint ejected or failing its
// checks), any not in tried, so that calls still find out when one is
// back. It returns nil when every endpoint was tried.
func (b *Backend) pick(set *endpointSet, tried []*endpoint) *endpoint {
	if e := b.choose(set.usable, tried); e != nil {
		return e
	}
	if len(set.usable) == len(set.all) {
		return nil
	}
	return b.choose(set.all, tried)
}

func (b *Backend) choose(list, tried []*endpoint) *endpoint {
	n := len(list)
	switch {
	case n == 0:
		return nil
	case n == 1:
		if contains(tried, list[0]) {
			return nil
		}
		return list[0]
	case len(tried) == 0 && b.cfg.balancer == LeastRequest:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		if list[j].inflight.Load() < list[i].inflight.Load() {
			return list[j]
		}
		return list[i]
	}
	start := int(b.next.Add(1) % uint32(n))
	for k := range n {
		if e := list[(start+k)%n]; !contains(tried, e) {
			return e
		}
	}
	return nil
}

// untried reports whether list holds an endpoint not in tried.
func untried(list, tried []*endpoint) bool {
	for _, e := range list {
		if !contains(tried, e) {
			return true
		}
	}
	return false
}

func contains(list []*endpoint, e *endpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

// answered records that e answered a call.
func (e *endpoint) answered(ctx context.Context) {
	if e.consecutive.Load() != 0 {
		e.consecutive.Store(0)
	}
	e.health.reached(ctx, "call")
}

// failed records that a call found e unreachable, and ejects e after
// enough failures in a row.
func (b *Backend) failed(ctx context.Context, e *endpoint, procedure string, err error) {
	e.failures.Add(1)
	e.health.callFailed(ctx, procedure, err)
	if n := b.cfg.outlier.ConsecutiveFailures; n > 0 && e.consecutive.Add(1) >= uint32(n) {
		b.eject(ctx, e)
	}
}

// endpointBody is the response body of a call: it records a connection
// that breaks while the response is read, and the end of the call for
// the least-request balancer.
type endpointBody struct {
	io.ReadCloser
	e      *endpoint
	b      *Backend
	ctx    context.Context
	path   string
	closed atomic.Bool
}

func (r *endpointBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && r.ctx.Err() == nil && !r.closed.Load() && brokenConnection(err) {
		r.b.failed(r.ctx, r.e, r.path, err)
	}
	return n, err
}

func (r *endpointBody) Close() error {
	if !r.closed.Swap(true) {
		r.e.inflight.Add(-1)
	}
	return r.ReadCloser.Close()
}

// eject takes e out of rotation after consecutive failures, unless that
// would eject more than the allowed share of the endpoints. The ejection
// lasts the base time, doubled by each ejection in a row, up to the
// maximum; then e returns to rotation (if its health check, when there is
// one, passes).
func (b *Backend) eject(ctx context.Context, e *endpoint) {
	o := b.cfg.outlier
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.removed || e.ejected.Load() {
		return
	}
	all := b.set.Load().all
	ejected := 0
	for _, x := range all {
		if x.ejected.Load() {
			ejected++
		}
	}
	if (ejected+1)*100 > o.MaxEjectionPercent*len(all) {
		return
	}
	now := time.Now()
	if !e.readmitted.IsZero() && now.Sub(e.readmitted) > o.MaxEjectionTime {
		e.ejectCount = 0 // healthy for long: forgive the past
	}
	d := o.BaseEjectionTime << min(e.ejectCount, 16)
	if d > o.MaxEjectionTime || d <= 0 {
		d = o.MaxEjectionTime
	}
	e.ejectCount++
	e.ejections.Add(1)
	e.ejected.Store(true)
	b.publish(all)
	e.timer = time.AfterFunc(d, func() { b.readmit(e) })
	if l := b.cfg.logger; l != nil {
		l.LogAttrs(ctx, slog.LevelWarn, "forward: endpoint ejected",
			slog.String("endpoint", e.url), slog.Int("consecutive_failures", int(e.consecutive.Load())), slog.Duration("for", d))
	}
}

// readmit returns e to rotation at the end of its ejection.
func (b *Backend) readmit(e *endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.removed {
		return
	}
	e.consecutive.Store(0)
	e.readmitted = time.Now()
	e.ejected.Store(false)
	b.publish(b.set.Load().all)
}

// placeholderHost is the host of the URLs connect's clients are built
// with; [caller.Do] replaces it with the chosen endpoint's.
const placeholderHost = "backend.portcullis.invalid"

// placeholderURL returns the URL connect's clients call for procedure.
func (b *Backend) placeholderURL(procedure string) string {
	return b.scheme + "://" + placeholderHost + strings.TrimSpace(procedure)
}
