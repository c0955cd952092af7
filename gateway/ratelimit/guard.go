package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/authz"
)

const (
	defaultGuardFailures     = 20
	defaultGuardPeriod       = 10 * time.Second
	defaultGuardCooldown     = 30 * time.Second
	defaultGuardMaxAddresses = 1 << 16
)

// ErrAuthFailures is wrapped by the errors a [Guard] refuses calls with.
var ErrAuthFailures = errors.New("ratelimit: too many failed authentications")

// Guard refuses the calls of a client address that keeps failing
// authentication, before they cost anything: it wraps the gate that
// authenticates, counts the calls that gate refuses with Unauthenticated,
// and once an address has spent its failure budget ([WithFailureBudget]),
// refuses its calls for a cool-down ([WithCooldown]) with
// ResourceExhausted (HTTP 429) and Retry-After, without calling the gate:
// a flood of forged tokens from one address costs one signature check per
// failure of the budget, not one per call.
//
// An address is told as the [Interceptor] tells it ([WithTrustedProxies],
// [WithIPv6Prefix]). Callers sharing an address with an attacker share its
// cool-down, unless [WithGuardExempt] lets them through.
//
// Its state is one time per address, as the [Memory] store keeps it, in at
// most [WithMaxAddresses] entries, forgotten once the address's failures
// are. A call that passes costs a lookup and no allocation.
type Guard struct {
	table     *Memory
	budget    Limit
	cooldown  time.Duration
	tolerance int64 // the budget's burst tolerance, ns
	address   addressConfig
	exempt    func(context.Context, http.Header) bool
	now       func() int64 // Unix ns
}

type guardConfig struct {
	budget       Limit
	cooldown     time.Duration
	maxAddresses int
	address      addressConfig
	exempt       func(context.Context, http.Header) bool
	now          func() time.Time
}

// NewGuard returns a guard and starts the goroutine that forgets
// addresses; call Close to stop it. It reports invalid option values.
func NewGuard(opts ...GuardOption) (*Guard, error) {
	cfg := guardConfig{
		budget:       Limit{Requests: defaultGuardFailures, Period: defaultGuardPeriod, Burst: defaultGuardFailures},
		cooldown:     defaultGuardCooldown,
		maxAddresses: defaultGuardMaxAddresses,
		address:      defaultAddressConfig(),
	}
	for _, opt := range opts {
		opt.applyToGuard(&cfg)
	}
	var problems []error
	if !cfg.budget.Valid() {
		problems = append(problems, fmt.Errorf("failure budget of %d per %s needs at least 1 failure per positive period", cfg.budget.Requests, cfg.budget.Period))
	}
	if cfg.cooldown <= 0 {
		problems = append(problems, fmt.Errorf("cool-down %s is not positive", cfg.cooldown))
	}
	if cfg.maxAddresses < 1 {
		problems = append(problems, fmt.Errorf("max addresses %d is below 1", cfg.maxAddresses))
	}
	if err := cfg.address.validate(); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("ratelimit: invalid guard options: %w", errors.Join(problems...))
	}
	return &Guard{
		table:     newMemory(memoryConfig{maxKeys: cfg.maxAddresses, cleanupInterval: defaultCleanupInterval, now: cfg.now}),
		budget:    cfg.budget,
		cooldown:  cfg.cooldown,
		tolerance: saturatingMul(int64(cfg.budget.Interval()), cfg.budget.Burst),
		address:   cfg.address,
		exempt:    cfg.exempt,
		now:       unixNanoClock(cfg.now),
	}, nil
}

// Wrap returns a request gate that runs next, the gate that authenticates,
// unless the call's address is in cool-down: then it refuses the call,
// unless the exemption ([WithGuardExempt]) lets it through. It counts a
// failure against the address each time next refuses a call with
// Unauthenticated; other refusals are not failures of authentication. next
// must not be nil.
func (g *Guard) Wrap(next connect.RequestGateFunc) connect.RequestGateFunc {
	if next == nil {
		panic("ratelimit: Guard.Wrap of a nil gate")
	}
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		if spec.IsClient {
			return next(ctx, spec, peer, header)
		}
		h := g.hash(clientAddr(peer.Addr, header, g.address.trusted))
		if wait := g.coolingFor(h, g.now()); wait > 0 && (g.exempt == nil || !g.exempt(ctx, header)) {
			return nil, guardError(spec.Procedure, peer.Protocol, wait)
		}
		gateCtx, err := next(ctx, spec, peer, header)
		if err != nil && connect.CodeOf(err) == connect.CodeUnauthenticated {
			g.fail(h, g.now())
		}
		return gateCtx, err
	}
}

// hash is the key of an address: the address, or for IPv6 its network of
// the configured prefix length, hashed without allocating.
func (g *Guard) hash(addr netip.Addr, ok bool) uint64 {
	var b [17]byte
	switch {
	case !ok:
	case addr.Is4():
		b[16] = 4
		a := addr.As4()
		copy(b[:], a[:])
	default:
		b[16] = 6
		if g.address.ipv6Bits < 128 {
			if p, err := addr.Prefix(g.address.ipv6Bits); err == nil {
				addr = p.Addr()
			}
		}
		b16 := addr.As16()
		copy(b[:], b16[:])
	}
	return maphash.Bytes(g.table.seed, b[:])
}

// coolingFor returns how long the address of hash h remains in cool-down
// at now: 0 when it is not in cool-down.
//
// An address's state is the theoretical arrival time of its failures, as
// the generic cell rate algorithm keeps it (see gcra). Within the budget,
// it lies at most the burst tolerance ahead of now; a cool-down sets it
// the cool-down further ahead, so that the address is in cool-down while
// it lies more than the tolerance ahead.
func (g *Guard) coolingFor(h uint64, now int64) time.Duration {
	s := g.table.shard(h)
	s.mu.Lock()
	var tat int64
	if e := s.tats[h]; e != nil {
		tat = e.tat
	}
	s.mu.Unlock()
	return time.Duration(max(tat-now-g.tolerance, 0))
}

// fail counts a failed authentication of the address of hash h at now,
// and starts its cool-down when it spends the budget.
func (g *Guard) fail(h uint64, now int64) {
	s := g.table.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.tats[h]
	var tat int64
	if e != nil {
		tat = e.tat
	}
	newTAT, r := gcra(tat, now, g.budget, 1)
	if !r.Allowed || r.Remaining == 0 {
		newTAT = max(tat, now+g.tolerance+int64(g.cooldown))
	}
	g.table.store(s, e, h, now, newTAT)
}

// Len returns the number of addresses tracked.
func (g *Guard) Len() int { return g.table.Len() }

// Close stops the goroutine that forgets addresses. The guard remains
// usable.
func (g *Guard) Close() error { return g.table.Close() }

// guardRefusal is the cause of a guard's refusal. Its message is what the
// client reads: it names no token and no address.
type guardRefusal struct{ retryAfter time.Duration }

func (e *guardRefusal) Error() string {
	return "too many failed authentications from this address: retry in " + ceilMillisecond(e.retryAfter).String()
}

func (e *guardRefusal) Is(target error) bool { return target == ErrAuthFailures }

func guardError(procedure, protocol string, wait time.Duration) *connect.Error {
	retry := ceilMillisecond(wait)
	cerr := connect.NewError(connect.CodeResourceExhausted, &guardRefusal{retryAfter: wait})
	addDetails(cerr,
		&errdetails.ErrorInfo{Reason: ReasonAuthFailures, Domain: authz.ErrorDomain,
			Metadata: map[string]string{"procedure": procedure}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
	)
	cerr.Meta()[headerRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(wait), 1), 10)}
	setPushback(cerr.Meta(), protocol, retry)
	return cerr
}
