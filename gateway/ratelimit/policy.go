package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// Policy is the operator's part of rate limiting: a limit for methods that
// declare none, and adjustments per client tier. The zero Policy applies the
// declared limits as they are and leaves undeclared methods unlimited.
type Policy struct {
	// Default is the call rate of methods that declare no rate_limit, or
	// nil to leave them unlimited.
	Default *catalog.RateLimit
	// Tiers adjusts the limits by the caller's tier: the token's tier
	// claim ([token.Principal].Tier). The entry "" applies to callers
	// without a tier, anonymous ones included. A tier not listed gets the
	// limits as declared.
	Tiers map[string]Tier
}

// Tier adjusts the limits for the callers of one tier.
type Tier struct {
	// Multiplier scales the requests and the burst of the call rate and of
	// the stream message rate (each kept at least 1). 0 means 1.
	Multiplier float64
	// Override, when set, replaces the call rate of every method, those
	// that declare none included; the stream message rate is only scaled.
	Override *catalog.RateLimit
	// Unlimited exempts the tier from every limit.
	Unlimited bool
}

// Limits returns the limits that apply to a call of m (nil for a method
// the catalog does not know) by a caller of the given tier: the call rate,
// and the rate of the messages each client stream may send. A zero Limit
// means no limit. Limits assumes a Policy that [Policy.Validate] accepts.
func (p Policy) Limits(m *catalog.Method, tier string) (call, messages Limit) {
	t, ok := p.Tiers[tier]
	return p.resolve(m, t, ok)
}

func (p Policy) resolve(m *catalog.Method, t Tier, tiered bool) (call, messages Limit) {
	call = FromCatalog(p.Default)
	if m != nil {
		if m.RateLimit != nil {
			call = FromCatalog(m.RateLimit)
		}
		messages = FromCatalog(m.StreamMessageLimit)
	}
	if !tiered {
		return call, messages
	}
	if t.Unlimited {
		return Limit{}, Limit{}
	}
	multiplier := t.Multiplier
	if multiplier == 0 {
		multiplier = 1
	}
	if t.Override != nil {
		call = FromCatalog(t.Override)
	} else {
		call = call.scale(multiplier)
	}
	return call, messages.scale(multiplier)
}

// Validate reports every problem of the policy: a default or override with
// no requests or no period, a multiplier that is negative or not finite, a
// tier both unlimited and overridden.
func (p Policy) Validate() error {
	var problems []error
	if err := validRate(p.Default); err != nil {
		problems = append(problems, fmt.Errorf("default: %w", err))
	}
	names := make([]string, 0, len(p.Tiers))
	for name := range p.Tiers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := p.Tiers[name]
		if math.IsNaN(t.Multiplier) || math.IsInf(t.Multiplier, 0) || t.Multiplier < 0 {
			problems = append(problems, fmt.Errorf("tier %q: multiplier %v is not a finite number at least 0", name, t.Multiplier))
		}
		if t.Unlimited && (t.Override != nil || t.Multiplier != 0) {
			problems = append(problems, fmt.Errorf("tier %q: unlimited excludes override and multiplier", name))
		}
		if err := validRate(t.Override); err != nil {
			problems = append(problems, fmt.Errorf("tier %q: override: %w", name, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("ratelimit: invalid policy: %w", errors.Join(problems...))
	}
	return nil
}

func validRate(rl *catalog.RateLimit) error {
	switch {
	case rl == nil:
		return nil
	case rl.Requests == 0:
		return errors.New("requests must be at least 1")
	case rl.Period <= 0:
		return errors.New("period must be positive")
	}
	return nil
}
