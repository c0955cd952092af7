package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
)

// Interceptor is a server-side connect.Interceptor that enforces each
// method's call rate per client, and the stream message rate per stream.
// It reads the caller from the context ([token.FromContext]), so it must
// run after authentication: list it after the authenticating interceptor
// in connect.WithInterceptors, which runs them in order.
type Interceptor struct {
	store    Store
	plans    map[string]*plan // by procedure
	unknown  *plan            // for procedures the catalog does not know
	trusted  []netip.Prefix
	ipv6Bits int
	now      func() int64 // Unix ns, for stream message limits
}

var _ connect.Interceptor = (*Interceptor)(nil)

type interceptorConfig struct {
	policy   Policy
	trusted  []netip.Prefix
	ipv6Bits int
	now      func() time.Time
}

// plan holds a method's limits, resolved once per tier.
type plan struct {
	base  limits // for callers of a tier the policy does not list
	tiers map[string]limits
}

type limits struct {
	call, messages Limit
	policy         string // the RateLimit-Policy field, "" for none
}

func newLimits(call, messages Limit) limits {
	return limits{call: call, messages: messages, policy: policyValue(call, messages)}
}

func newPlan(policy Policy, m *catalog.Method) *plan {
	p := &plan{
		base:  newLimits(policy.resolve(m, Tier{}, false)),
		tiers: make(map[string]limits, len(policy.Tiers)),
	}
	for name, tier := range policy.Tiers {
		p.tiers[name] = newLimits(policy.resolve(m, tier, true))
	}
	return p
}

func (p *plan) limits(tier string) limits {
	if l, ok := p.tiers[tier]; ok {
		return l
	}
	return p.base
}

// NewInterceptor returns an interceptor that enforces the limits the
// catalog's methods declare, adjusted by the policy ([WithPolicy]), with
// the decisions of store. It resolves every method's limits for every tier
// up front, and returns an error for an invalid policy.
func NewInterceptor(cat *catalog.Catalog, store Store, opts ...Option) (*Interceptor, error) {
	if cat == nil || store == nil {
		return nil, errors.New("ratelimit: NewInterceptor needs a catalog and a store")
	}
	cfg := interceptorConfig{ipv6Bits: 64}
	for _, opt := range opts {
		opt.applyToInterceptor(&cfg)
	}
	if err := cfg.policy.Validate(); err != nil {
		return nil, err
	}
	i := &Interceptor{
		store:    store,
		plans:    make(map[string]*plan, len(cat.Methods())),
		unknown:  newPlan(cfg.policy, nil),
		trusted:  cfg.trusted,
		ipv6Bits: cfg.ipv6Bits,
		now:      unixNanoClock(cfg.now),
	}
	for _, m := range cat.Methods() {
		i.plans[m.Procedure] = newPlan(cfg.policy, m)
	}
	return i, nil
}

// WrapUnary implements connect.Interceptor. Over the limit, it answers
// ResourceExhausted without calling next. The RateLimit fields go into the
// response headers, allowed or not, so that gRPC clients see them as
// header metadata too.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if spec.IsClient {
			return next(ctx, req)
		}
		principal, _ := token.FromContext(ctx)
		lim := i.limitsFor(spec.Procedure, principal)
		if lim.call.IsZero() {
			return next(ctx, req)
		}
		key := i.key(spec.Procedure, principal, req.Peer(), req.Header())
		res, err := i.store.Allow(ctx, key, lim.call, 1)
		if err != nil {
			return nil, storeError(ctx, spec.Procedure, err)
		}
		info, hasInfo := connect.CallInfoForHandlerContext(ctx)
		if !res.Allowed {
			cerr := limitedError(spec.Procedure, false, res)
			header := cerr.Meta()
			if hasInfo {
				header = info.ResponseHeader()
			}
			setHeaders(header, lim.policy, policyCalls, res)
			return nil, cerr
		}
		if hasInfo {
			setHeaders(info.ResponseHeader(), lim.policy, policyCalls, res)
			return next(ctx, req)
		}
		resp, err := next(ctx, req)
		var cerr *connect.Error
		switch {
		case err == nil && resp != nil:
			setHeaders(resp.Header(), lim.policy, policyCalls, res)
		case errors.As(err, &cerr):
			setHeaders(cerr.Meta(), lim.policy, policyCalls, res)
		}
		return resp, err
	}
}

// WrapStreamingClient implements connect.Interceptor: it leaves clients
// alone.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor. Opening a stream
// counts as one call. When the method declares a stream message limit, each
// message received on a client or bidi stream counts against the stream's
// own budget; the first one over it fails to be received with
// ResourceExhausted, and so do all after it, which ends the stream with
// that code.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		spec := conn.Spec()
		principal, _ := token.FromContext(ctx)
		lim := i.limitsFor(spec.Procedure, principal)
		if !lim.call.IsZero() {
			key := i.key(spec.Procedure, principal, conn.Peer(), conn.RequestHeader())
			res, err := i.store.Allow(ctx, key, lim.call, 1)
			if err != nil {
				return storeError(ctx, spec.Procedure, err)
			}
			setHeaders(conn.ResponseHeader(), lim.policy, policyCalls, res)
			if !res.Allowed {
				return limitedError(spec.Procedure, false, res)
			}
		} else if lim.policy != "" {
			conn.ResponseHeader()[headerRateLimitPolicy] = []string{lim.policy}
		}
		if lim.messages.IsZero() || spec.StreamType&connect.StreamTypeClient == 0 {
			return next(ctx, conn)
		}
		limited := &limitedConn{StreamingHandlerConn: conn, limit: lim.messages, now: i.now}
		err := next(ctx, limited)
		if err == nil && limited.err != nil {
			return limited.err
		}
		return err
	}
}

func (i *Interceptor) limitsFor(procedure string, principal *token.Principal) limits {
	p, ok := i.plans[procedure]
	if !ok {
		p = i.unknown
	}
	tier := ""
	if principal != nil {
		tier = principal.Tier
	}
	return p.limits(tier)
}

// key identifies the caller of a procedure: "<procedure>|id:<client id>"
// for an authenticated caller, "<procedure>|ip:<address>" otherwise.
func (i *Interceptor) key(procedure string, principal *token.Principal, peer connect.Peer, header http.Header) string {
	if principal != nil && principal.ClientID != "" {
		return procedure + "|id:" + principal.ClientID
	}
	addr, ok := clientAddr(peer.Addr, header, i.trusted)
	return procedure + "|ip:" + addrKey(addr, ok, i.ipv6Bits)
}

// limitError is the error of a call or message over its limit. Its message
// is what the client reads.
type limitError struct {
	procedure  string
	messages   bool
	retryAfter time.Duration
}

func (e *limitError) Error() string {
	what := "rate limit"
	if e.messages {
		what = "stream message rate limit"
	}
	return fmt.Sprintf("%s exceeded for %s: retry in %s", what, e.procedure, ceilMillisecond(e.retryAfter))
}

func (e *limitError) Is(target error) bool { return target == ErrLimited }

func limitedError(procedure string, messages bool, res Result) *connect.Error {
	return connect.NewError(connect.CodeResourceExhausted,
		&limitError{procedure: procedure, messages: messages, retryAfter: res.RetryAfter})
}

// unavailableError keeps the store's failure for the server's logs while
// the client reads only that the limiter is unavailable.
type unavailableError struct {
	procedure string
	cause     error
}

func (e *unavailableError) Error() string {
	return "rate limiter unavailable for " + e.procedure + ": try again later"
}

func (e *unavailableError) Unwrap() error { return e.cause }

func storeError(ctx context.Context, procedure string, err error) *connect.Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		code := connect.CodeCanceled
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return connect.NewError(code, ctxErr)
	}
	return connect.NewError(connect.CodeUnavailable, &unavailableError{procedure: procedure, cause: err})
}
