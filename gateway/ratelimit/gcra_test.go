package ratelimit_test

import (
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
)

// step is one request at an explicit time and the decision it must get.
type step struct {
	at                     time.Duration // since t0
	n                      int
	allowed                bool
	remaining              int
	retryAfter, resetAfter time.Duration
	repeat                 int // the same request this many times (default 1), remaining counting down
}

func runSteps(t *testing.T, limit ratelimit.Limit, steps []step) {
	t.Helper()
	m := newMemory(t)
	for i, s := range steps {
		n := s.n
		if n == 0 {
			n = 1
		}
		repeat := max(s.repeat, 1)
		for j := range repeat {
			got := m.AllowAt(t0.Add(s.at), "key", limit, n)
			want := ratelimit.Result{
				Allowed:    s.allowed,
				Limit:      limit,
				Remaining:  s.remaining + (repeat - 1 - j),
				RetryAfter: s.retryAfter,
				ResetAfter: s.resetAfter - time.Duration(repeat-1-j)*time.Duration(n)*limit.Interval(),
			}
			if got != want {
				t.Fatalf("step %d, request %d at t0+%s: got %+v, want %+v", i, j+1, s.at, got, want)
			}
		}
	}
}

func TestGCRA(t *testing.T) {
	t.Parallel()
	perMinute := ratelimit.Limit{Requests: 100, Period: time.Minute, Burst: 20} // one every 600ms
	slow := ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 1}     // one every 1.25s
	tests := []struct {
		name  string
		limit ratelimit.Limit
		steps []step
	}{
		{
			name:  "burst exhausted",
			limit: perMinute,
			steps: []step{
				{at: 0, allowed: true, remaining: 0, resetAfter: 12 * time.Second, repeat: 20},
				{at: 0, allowed: false, remaining: 0, retryAfter: 600 * time.Millisecond, resetAfter: 12 * time.Second},
				{at: 0, allowed: false, remaining: 0, retryAfter: 600 * time.Millisecond, resetAfter: 12 * time.Second},
			},
		},
		{
			name:  "refill at the steady rate",
			limit: perMinute,
			steps: []step{
				{at: 0, allowed: true, remaining: 0, resetAfter: 12 * time.Second, repeat: 20},
				{at: 599 * time.Millisecond, allowed: false, retryAfter: time.Millisecond, resetAfter: 12*time.Second - 599*time.Millisecond},
				{at: 600 * time.Millisecond, allowed: true, remaining: 0, resetAfter: 12 * time.Second},
				{at: 600 * time.Millisecond, allowed: false, retryAfter: 600 * time.Millisecond, resetAfter: 12 * time.Second},
				{at: 3 * time.Second, allowed: true, remaining: 3, resetAfter: 10200 * time.Millisecond, repeat: 1},
			},
		},
		{
			name:  "full burst back after reset",
			limit: perMinute,
			steps: []step{
				{at: 0, allowed: true, remaining: 15, resetAfter: 3 * time.Second, repeat: 5},
				{at: 3 * time.Second, allowed: true, remaining: 19, resetAfter: 600 * time.Millisecond},
				{at: time.Hour, allowed: true, remaining: 19, resetAfter: 600 * time.Millisecond},
			},
		},
		{
			name:  "retry after exact to the millisecond",
			limit: slow,
			steps: []step{
				{at: 0, allowed: true, remaining: 0, resetAfter: 1250 * time.Millisecond},
				{at: 0, allowed: false, retryAfter: 1250 * time.Millisecond, resetAfter: 1250 * time.Millisecond},
				{at: 1 * time.Millisecond, allowed: false, retryAfter: 1249 * time.Millisecond, resetAfter: 1249 * time.Millisecond},
				{at: 1249 * time.Millisecond, allowed: false, retryAfter: time.Millisecond, resetAfter: time.Millisecond},
				{at: 1250 * time.Millisecond, allowed: true, remaining: 0, resetAfter: 1250 * time.Millisecond},
			},
		},
		{
			name:  "a request of cost n",
			limit: perMinute,
			steps: []step{
				{at: 0, n: 15, allowed: true, remaining: 5, resetAfter: 9 * time.Second},
				{at: 0, n: 6, allowed: false, remaining: 5, retryAfter: 600 * time.Millisecond, resetAfter: 9 * time.Second},
				{at: 0, n: 5, allowed: true, remaining: 0, resetAfter: 12 * time.Second},
			},
		},
		{
			name:  "a request over the burst is never allowed",
			limit: ratelimit.Limit{Requests: 1, Period: time.Second, Burst: 2},
			steps: []step{
				{at: 0, n: 3, allowed: false, remaining: 2, retryAfter: time.Second},
				{at: time.Hour, n: 3, allowed: false, remaining: 2, retryAfter: time.Second},
			},
		},
		{
			name:  "an invalid limit denies",
			limit: ratelimit.Limit{Requests: 0, Period: time.Second, Burst: 1},
			steps: []step{{at: 0, allowed: false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, tt.limit, tt.steps)
		})
	}
}

func TestGCRAPeekConsumesNothing(t *testing.T) {
	t.Parallel()
	m := newMemory(t)
	limit := ratelimit.Limit{Requests: 1, Period: time.Second, Burst: 2}
	for range 3 {
		if got := m.AllowAt(t0, "k", limit, 0); !got.Allowed || got.Remaining != 2 {
			t.Fatalf("peek: got %+v, want allowed with 2 remaining", got)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("a peek stored %d keys", m.Len())
	}
}

func TestPolicyLimits(t *testing.T) {
	t.Parallel()
	cat := compiledCatalog(t)
	method := func(procedure string) *catalog.Method {
		m, ok := cat.Method(procedure)
		if !ok {
			t.Fatalf("no method %s", procedure)
		}
		return m
	}
	getOrder := method("/example.orders.v1.OrdersService/GetOrder")                       // 100/min, burst 20
	importOrders := method("/example.orders.v1.OrdersService/ImportOrders")               // messages 1000/s, burst 100
	listRequirements := method("/example.licensing.v1.LicensingService/ListRequirements") // none
	policy := ratelimit.Policy{
		Default: &catalog.RateLimit{Requests: 10, Period: time.Second, Burst: 5},
		Tiers: map[string]ratelimit.Tier{
			"pro":  {Multiplier: 2},
			"slow": {Override: &catalog.RateLimit{Requests: 4, Period: 5 * time.Second, Burst: 0}},
			"vip":  {Unlimited: true},
			"":     {Multiplier: 0.5},
		},
	}
	tests := []struct {
		name         string
		policy       ratelimit.Policy
		method       *catalog.Method
		tier         string
		wantCall     ratelimit.Limit
		wantMessages ratelimit.Limit
		steps        []step // with wantCall
	}{
		{
			name: "declared", policy: policy, method: getOrder, tier: "free",
			wantCall: ratelimit.Limit{Requests: 100, Period: time.Minute, Burst: 20},
			steps: []step{
				{allowed: true, remaining: 0, resetAfter: 12 * time.Second, repeat: 20},
				{allowed: false, retryAfter: 600 * time.Millisecond, resetAfter: 12 * time.Second},
			},
		},
		{
			name: "multiplier", policy: policy, method: getOrder, tier: "pro",
			wantCall: ratelimit.Limit{Requests: 200, Period: time.Minute, Burst: 40},
			steps: []step{
				{allowed: true, remaining: 0, resetAfter: 12 * time.Second, repeat: 40},
				{allowed: false, retryAfter: 300 * time.Millisecond, resetAfter: 12 * time.Second},
			},
		},
		{
			name: "multiplier scales stream messages", policy: policy, method: importOrders, tier: "pro",
			wantCall:     ratelimit.Limit{Requests: 200, Period: time.Minute, Burst: 40},
			wantMessages: ratelimit.Limit{Requests: 2000, Period: time.Second, Burst: 200},
		},
		{
			name: "override", policy: policy, method: getOrder, tier: "slow",
			wantCall: ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 1},
			steps: []step{
				{allowed: true, remaining: 0, resetAfter: 1250 * time.Millisecond},
				{at: 250 * time.Millisecond, allowed: false, retryAfter: time.Second, resetAfter: time.Second},
			},
		},
		{
			name: "override applies to undeclared methods", policy: policy, method: listRequirements, tier: "slow",
			wantCall: ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 1},
		},
		{
			name: "override leaves stream messages", policy: policy, method: importOrders, tier: "slow",
			wantCall:     ratelimit.Limit{Requests: 4, Period: 5 * time.Second, Burst: 1},
			wantMessages: ratelimit.Limit{Requests: 1000, Period: time.Second, Burst: 100},
		},
		{
			name: "unlimited tier", policy: policy, method: importOrders, tier: "vip",
		},
		{
			name: "callers without a tier", policy: policy, method: getOrder, tier: "",
			wantCall: ratelimit.Limit{Requests: 50, Period: time.Minute, Burst: 10},
		},
		{
			name: "default limit", policy: policy, method: listRequirements, tier: "free",
			wantCall: ratelimit.Limit{Requests: 10, Period: time.Second, Burst: 5},
			steps: []step{
				{allowed: true, remaining: 0, resetAfter: 500 * time.Millisecond, repeat: 5},
				{allowed: false, retryAfter: 100 * time.Millisecond, resetAfter: 500 * time.Millisecond},
				{at: 100 * time.Millisecond, allowed: true, remaining: 0, resetAfter: 500 * time.Millisecond},
			},
		},
		{
			name: "default limit for unknown methods", policy: policy, method: nil, tier: "free",
			wantCall: ratelimit.Limit{Requests: 10, Period: time.Second, Burst: 5},
		},
		{
			name: "no default: undeclared methods are unlimited", policy: ratelimit.Policy{}, method: listRequirements, tier: "free",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			call, messages := tt.policy.Limits(tt.method, tt.tier)
			if call != tt.wantCall || messages != tt.wantMessages {
				t.Fatalf("Limits = %v, %v; want %v, %v", call, messages, tt.wantCall, tt.wantMessages)
			}
			if len(tt.steps) > 0 {
				runSteps(t, call, tt.steps)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	nan := 0.0
	nan /= nan
	tests := []struct {
		name    string
		policy  ratelimit.Policy
		wantErr string
	}{
		{name: "zero", policy: ratelimit.Policy{}},
		{
			name:    "default without requests",
			policy:  ratelimit.Policy{Default: &catalog.RateLimit{Period: time.Second}},
			wantErr: "ratelimit: invalid policy: default: requests must be at least 1",
		},
		{
			name:    "negative multiplier",
			policy:  ratelimit.Policy{Tiers: map[string]ratelimit.Tier{"free": {Multiplier: -1}}},
			wantErr: `ratelimit: invalid policy: tier "free": multiplier -1 is not a finite number at least 0`,
		},
		{
			name:    "NaN multiplier",
			policy:  ratelimit.Policy{Tiers: map[string]ratelimit.Tier{"free": {Multiplier: nan}}},
			wantErr: `ratelimit: invalid policy: tier "free": multiplier NaN is not a finite number at least 0`,
		},
		{
			name:    "override without period",
			policy:  ratelimit.Policy{Tiers: map[string]ratelimit.Tier{"pro": {Override: &catalog.RateLimit{Requests: 1}}}},
			wantErr: `ratelimit: invalid policy: tier "pro": override: period must be positive`,
		},
		{
			name:    "unlimited and overridden",
			policy:  ratelimit.Policy{Tiers: map[string]ratelimit.Tier{"vip": {Unlimited: true, Multiplier: 2}}},
			wantErr: `ratelimit: invalid policy: tier "vip": unlimited excludes override and multiplier`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestLimitString(t *testing.T) {
	t.Parallel()
	if got, want := (ratelimit.Limit{Requests: 100, Period: time.Minute, Burst: 20}).String(), "100 per 1m0s, burst 20"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := (ratelimit.Limit{}).String(), "unlimited"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := ratelimit.FromCatalog(&catalog.RateLimit{Requests: 3, Period: time.Second}); got != (ratelimit.Limit{Requests: 3, Period: time.Second, Burst: 1}) {
		t.Errorf("FromCatalog = %+v, want burst 1", got)
	}
}
