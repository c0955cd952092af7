package config

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// RouteDNS names the replicas of a route's backend in DNS: every A and
// AAAA record of the name's host is an endpoint, such as the pods of a
// Kubernetes headless service.
type RouteDNS struct {
	// Name is host:port, such as "orders.prod.svc.cluster.local:8080".
	Name string `json:"name"`
	// Scheme is "http" (h2c, default) or "https".
	Scheme string `json:"scheme,omitempty"`
	// Refresh is how often the name is resolved again. Default 10s; at
	// least 100ms.
	Refresh Duration `json:"refresh,omitempty"`
}

// Outlier configures the passive ejection of a backend's endpoints.
type Outlier struct {
	// Enabled turns ejection on. Default true; see [Outlier.IsEnabled].
	Enabled *bool `json:"enabled,omitempty"`
	// ConsecutiveFailures is the number of calls in a row that find an
	// endpoint unreachable (refused, reset) and eject it. Default 5.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// BaseEjectionTime is the first ejection's length, doubled by each
	// ejection in a row. Default 5s.
	BaseEjectionTime Duration `json:"base_ejection_time,omitempty"`
	// MaxEjectionTime bounds an ejection. Default 2m; at least
	// BaseEjectionTime.
	MaxEjectionTime Duration `json:"max_ejection_time,omitempty"`
	// MaxEjectionPercent of a backend's endpoints may be ejected at once.
	// Default 50.
	MaxEjectionPercent int `json:"max_ejection_percent,omitempty"`
}

// IsEnabled reports whether ejection is on (the default).
func (o Outlier) IsEnabled() bool { return o.Enabled == nil || *o.Enabled }

// Retries configures the retry of safe calls on another endpoint: unary
// methods declared idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT, whose
// endpoint was unreachable before any response.
type Retries struct {
	// MaxAttempts of one call, the first included; 1 turns retries off.
	// Default 3; at most 8.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// MaxBodyBytes is the largest request retried. Default 64 KiB.
	MaxBodyBytes int `json:"max_body_bytes,omitempty"`
	// BudgetRatio is the share of calls that may be retries over Window.
	// Default 0.2.
	BudgetRatio float64 `json:"budget_ratio,omitempty"`
	// MinPerSecond retries are allowed each second whatever the ratio.
	// Default 10.
	MinPerSecond int `json:"min_per_second,omitempty"`
	// Window is the period over which calls and retries are counted.
	// Default 10s; at least 1s.
	Window Duration `json:"window,omitempty"`
}

func (h *Health) setDefaults() {
	o := &h.Outlier
	setInt(&o.ConsecutiveFailures, 5)
	setDuration(&o.BaseEjectionTime, 5*time.Second)
	setDuration(&o.MaxEjectionTime, 2*time.Minute)
	setInt(&o.MaxEjectionPercent, 50)
	r := &h.Retries
	setInt(&r.MaxAttempts, 3)
	setInt(&r.MaxBodyBytes, 64<<10)
	if r.BudgetRatio == 0 {
		r.BudgetRatio = 0.2
	}
	setInt(&r.MinPerSecond, 10)
	setDuration(&r.Window, 10*time.Second)
}

func (h *Health) validate(v *validator) {
	if h.Interval != nil && *h.Interval != 0 {
		v.atLeast("health.interval", *h.Interval, 100*time.Millisecond)
	}
	o := h.Outlier
	if o.ConsecutiveFailures < 0 {
		v.add("health.outlier.consecutive_failures", "must be positive")
	}
	v.atLeast("health.outlier.base_ejection_time", o.BaseEjectionTime, time.Millisecond)
	if o.MaxEjectionTime < o.BaseEjectionTime {
		v.add("health.outlier.max_ejection_time", "%v is less than base_ejection_time (%v)", o.MaxEjectionTime, o.BaseEjectionTime)
	}
	if o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100 {
		v.add("health.outlier.max_ejection_percent", "%d is not between 0 and 100", o.MaxEjectionPercent)
	}
	r := h.Retries
	if r.MaxAttempts < 1 || r.MaxAttempts > 8 {
		v.add("health.retries.max_attempts", "%d is not between 1 and 8", r.MaxAttempts)
	}
	if r.MaxBodyBytes < 0 {
		v.add("health.retries.max_body_bytes", "must be positive")
	}
	if r.BudgetRatio < 0 || r.BudgetRatio > 1 {
		v.add("health.retries.budget_ratio", "%v is not between 0 and 1", r.BudgetRatio)
	}
	if r.MinPerSecond < 0 {
		v.add("health.retries.min_per_second", "must be positive")
	}
	v.atLeast("health.retries.window", r.Window, time.Second)
}

// validateEndpoints checks where a route's backend is: backend, or
// endpoints and/or dns, all of one scheme.
func (r *Route) validateEndpoints(v *validator, path string) {
	if r.DNS != nil {
		setString(&r.DNS.Scheme, "http")
		setDuration(&r.DNS.Refresh, 10*time.Second)
	}
	scheme := ""
	same := func(p, s string) {
		if scheme == "" {
			scheme = s
		} else if s != scheme {
			v.add(p, "is %s://, but the route's other endpoints are %s://", s, scheme)
		}
	}
	switch {
	case r.Backend != "" && (len(r.Endpoints) > 0 || r.DNS != nil):
		v.add(path+".backend", "is set with endpoints or dns: give one backend URL, or the replicas in endpoints and/or dns")
	case r.Backend == "" && len(r.Endpoints) == 0 && r.DNS == nil:
		v.add(path+".backend", "is required (or endpoints, or dns)")
	case r.Backend != "":
		if s, ok := httpURL(r.Backend); !ok {
			v.add(path+".backend", "%q is not an http:// (h2c) or https:// URL", r.Backend)
		} else {
			same(path+".backend", s)
		}
	}
	for i, e := range r.Endpoints {
		p := fmt.Sprintf("%s.endpoints[%d]", path, i)
		if s, ok := httpURL(e); !ok {
			v.add(p, "%q is not an http:// (h2c) or https:// URL", e)
		} else {
			same(p, s)
		}
	}
	if d := r.DNS; d != nil {
		if host, port, err := net.SplitHostPort(d.Name); err != nil || host == "" || port == "" {
			v.add(path+".dns.name", "%q is not host:port", d.Name)
		}
		if d.Scheme != "http" && d.Scheme != "https" {
			v.add(path+".dns.scheme", "%q is not http or https", d.Scheme)
		} else {
			same(path+".dns.scheme", d.Scheme)
		}
		v.atLeast(path+".dns.refresh", d.Refresh, 100*time.Millisecond)
	}
	if r.CAFile != "" && scheme != "" && scheme != "https" {
		v.add(path+".ca_file", "is set, but the backend is not https")
	}
	switch r.Balancer {
	case "", "round_robin", "least_request":
	default:
		v.add(path+".balancer", "%q is not round_robin or least_request", r.Balancer)
	}
}

// httpURL returns the scheme of an absolute http:// or https:// URL.
func httpURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return u.Scheme, true
}
