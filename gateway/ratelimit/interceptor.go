package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
//
// Its [Interceptor.Gate] takes the call's decision earlier, on the
// request headers, before any message is read; the interceptor behind it
// then only writes the decision's fields, and limits stream messages.
type Interceptor struct {
	store   Store
	plans   map[string]*plan // by procedure
	unknown *plan            // for procedures the catalog does not know
	address addressConfig
	now     func() int64 // Unix ns, for stream message limits
}

var _ connect.Interceptor = (*Interceptor)(nil)

type interceptorConfig struct {
	policy  Policy
	address addressConfig
	now     func() time.Time
}

// plan holds a method's limits, resolved once per tier.
type plan struct {
	base  *limits // for callers of a tier the policy does not list
	tiers map[string]*limits
}

type limits struct {
	call, messages Limit
	policy         string // the RateLimit-Policy field, "" for none
}

func newLimits(call, messages Limit) *limits {
	return &limits{call: call, messages: messages, policy: policyValue(call, messages)}
}

func newPlan(policy Policy, m *catalog.Method) *plan {
	p := &plan{
		base:  newLimits(policy.resolve(m, Tier{}, false)),
		tiers: make(map[string]*limits, len(policy.Tiers)),
	}
	for name, tier := range policy.Tiers {
		p.tiers[name] = newLimits(policy.resolve(m, tier, true))
	}
	return p
}

func (p *plan) limits(tier string) *limits {
	if l, ok := p.tiers[tier]; ok {
		return l
	}
	return p.base
}

// NewInterceptor returns an interceptor that enforces the limits the
// catalog's methods declare, adjusted by the policy ([WithPolicy]), with
// the decisions of store. It resolves every method's limits for every tier
// up front, and reports an invalid policy or option value.
func NewInterceptor(cat *catalog.Catalog, store Store, opts ...Option) (*Interceptor, error) {
	if cat == nil || store == nil {
		return nil, errors.New("ratelimit: NewInterceptor needs a catalog and a store")
	}
	cfg := interceptorConfig{address: defaultAddressConfig()}
	for _, opt := range opts {
		opt.applyToInterceptor(&cfg)
	}
	if err := cfg.address.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: invalid interceptor options: %w", err)
	}
	if err := cfg.policy.Validate(); err != nil {
		return nil, err
	}
	i := &Interceptor{
		store:   store,
		plans:   make(map[string]*plan, len(cat.Methods())),
		unknown: newPlan(cfg.policy, nil),
		address: cfg.address,
		now:     unixNanoClock(cfg.now),
	}
	for _, m := range cat.Methods() {
		i.plans[m.Procedure] = newPlan(cfg.policy, m)
	}
	return i, nil
}

// Gate returns a request gate for [connect.WithRequestGate] that decides
// each call's rate on its headers alone, before any message is read: a
// call over its limit is refused without reading its body. It reads the
// caller from the context, so it goes after the gate that authenticates
// (such as [authz.Authorizer.Gate]); a call without a principal counts
// against its address.
//
// A refusal carries the RateLimit fields in its error's metadata, which
// Connect and HTTP clients read as response headers and gRPC clients as
// trailers. An allowed call goes on with its decision in the context: the
// same Interceptor, listed in the handler's interceptors, writes the
// decision's fields into the response headers and does not decide again.
func (i *Interceptor) Gate() connect.RequestGateFunc {
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		if spec.IsClient {
			return ctx, nil
		}
		principal, _ := token.FromContext(ctx)
		lim := i.limitsFor(spec.Procedure, principal)
		if lim.call.IsZero() {
			return ctx, nil
		}
		res, err := i.decide(ctx, spec.Procedure, principal, peer, header, lim)
		if err != nil {
			return nil, err
		}
		if !res.Allowed {
			cerr := limitedError(spec.Procedure, peer.Protocol, false, principal, res)
			setHeaders(cerr.Meta(), lim.policy, policyCalls, res)
			return nil, cerr
		}
		return &gateDecision{Context: ctx, owner: i, lim: lim, res: res}, nil
	}
}

// gateDecision is the context of a call that the gate allowed: the
// decision, and the storage of the response fields, in one allocation.
type gateDecision struct {
	context.Context
	owner  *Interceptor
	lim    *limits
	res    Result
	fields [2]string // RateLimit-Policy, RateLimit
}

type gateDecisionKey struct{}

// Value implements context.Context.
func (d *gateDecision) Value(key any) any {
	if key == (gateDecisionKey{}) {
		return d
	}
	return d.Context.Value(key)
}

// decidedIn returns the gate's decision of the call of ctx, or nil when
// the gate of i did not decide it.
func (i *Interceptor) decidedIn(ctx context.Context) *gateDecision {
	if d, ok := ctx.Value(gateDecisionKey{}).(*gateDecision); ok && d.owner == i {
		return d
	}
	return nil
}

// setHeaders writes the fields of the gate's allowed decision into h,
// sharing the decision's storage.
func (d *gateDecision) setHeaders(h http.Header) {
	if d.lim.policy != "" {
		d.fields[0] = d.lim.policy
		h[headerRateLimitPolicy] = d.fields[0:1:1]
	}
	d.fields[1] = rateLimitValue(policyCalls, d.res)
	h[headerRateLimit] = d.fields[1:2:2]
}

func (i *Interceptor) decide(ctx context.Context, procedure string, principal *token.Principal, peer connect.Peer, header http.Header, lim *limits) (Result, error) {
	key := i.key(procedure, principal, peer, header)
	res, err := i.store.Allow(ctx, key, lim.call, 1)
	if err != nil {
		return res, storeError(ctx, procedure, err)
	}
	return res, nil
}

// WrapUnary implements connect.Interceptor. Over the limit, it answers
// ResourceExhausted without calling next. The RateLimit fields go into the
// response headers, allowed or not, so that gRPC clients see them as
// header metadata too. A call the gate allowed is not decided again.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if spec.IsClient {
			return next(ctx, req)
		}
		info, hasInfo := connect.CallInfoForHandlerContext(ctx)
		if d := i.decidedIn(ctx); d != nil {
			if hasInfo {
				d.setHeaders(info.ResponseHeader())
				return next(ctx, req)
			}
			resp, err := next(ctx, req)
			if header := responseHeader(resp, err); header != nil {
				d.setHeaders(header)
			}
			return resp, err
		}
		principal, _ := token.FromContext(ctx)
		lim := i.limitsFor(spec.Procedure, principal)
		if lim.call.IsZero() {
			return next(ctx, req)
		}
		res, err := i.decide(ctx, spec.Procedure, principal, req.Peer(), req.Header(), lim)
		if err != nil {
			return nil, err
		}
		if !res.Allowed {
			cerr := limitedError(spec.Procedure, req.Peer().Protocol, false, principal, res)
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
		if header := responseHeader(resp, err); header != nil {
			setHeaders(header, lim.policy, policyCalls, res)
		}
		return resp, err
	}
}

// responseHeader returns where the fields of a call answered without a
// connect.CallInfo go: the response's headers, or the error's metadata.
func responseHeader(resp connect.AnyResponse, err error) http.Header {
	var cerr *connect.Error
	switch {
	case err == nil && resp != nil:
		return resp.Header()
	case errors.As(err, &cerr):
		return cerr.Meta()
	}
	return nil
}

// WrapStreamingClient implements connect.Interceptor: it leaves clients
// alone.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor. Opening a stream
// counts as one call, unless the gate already counted it. When the method
// declares a stream message limit, each message received on a client or
// bidi stream counts against the stream's own budget; the first one over
// it fails to be received with ResourceExhausted, and so do all after it,
// which ends the stream with that code.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		spec := conn.Spec()
		principal, _ := token.FromContext(ctx)
		lim := i.limitsFor(spec.Procedure, principal)
		if d := i.decidedIn(ctx); d != nil {
			lim = d.lim
			d.setHeaders(conn.ResponseHeader())
		} else if !lim.call.IsZero() {
			res, err := i.decide(ctx, spec.Procedure, principal, conn.Peer(), conn.RequestHeader(), lim)
			if err != nil {
				return err
			}
			setHeaders(conn.ResponseHeader(), lim.policy, policyCalls, res)
			if !res.Allowed {
				return limitedError(spec.Procedure, conn.Peer().Protocol, false, principal, res)
			}
		} else if lim.policy != "" {
			conn.ResponseHeader()[headerRateLimitPolicy] = []string{lim.policy}
		}
		if lim.messages.IsZero() || spec.StreamType&connect.StreamTypeClient == 0 {
			return next(ctx, conn)
		}
		limited := &limitedConn{StreamingHandlerConn: conn, limit: lim.messages, principal: principal, now: i.now}
		err := next(ctx, limited)
		if err == nil && limited.err != nil {
			return limited.err
		}
		return err
	}
}

func (i *Interceptor) limitsFor(procedure string, principal *token.Principal) *limits {
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
	addr, ok := clientAddr(peer.Addr, header, i.address.trusted)
	return procedure + "|ip:" + addrKey(addr, ok, i.address.ipv6Bits)
}
