package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Response header names, in canonical form.
const (
	headerRetryAfter      = "Retry-After"
	headerRateLimit       = "Ratelimit"        // RateLimit
	headerRateLimitPolicy = "Ratelimit-Policy" // RateLimit-Policy
)

// Policy names in the RateLimit and RateLimit-Policy fields.
const (
	policyCalls    = "default"
	policyMessages = "messages"
)

// policyItem formats one member of RateLimit-Policy: the quota q is the
// declared number of requests per window w, in whole seconds. A period
// that is not whole seconds is scaled to the next whole second.
func policyItem(name string, l Limit) string {
	quota, window := int64(l.Requests), int64(l.Period/time.Second)
	if l.Period%time.Second != 0 {
		window = ceilSeconds(l.Period)
		quota = max(int64(float64(l.Requests)*float64(window)*float64(time.Second)/float64(l.Period)), 1)
	}
	b := make([]byte, 0, 32)
	b = strconv.AppendQuote(b, name)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, quota, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, window, 10)
	return string(b)
}

// policyValue formats RateLimit-Policy for a call limit and a stream
// message limit, either of which may be zero; "" when both are.
func policyValue(call, messages Limit) string {
	switch {
	case call.IsZero() && messages.IsZero():
		return ""
	case messages.IsZero():
		return policyItem(policyCalls, call)
	case call.IsZero():
		return policyItem(policyMessages, messages)
	}
	return policyItem(policyCalls, call) + ", " + policyItem(policyMessages, messages)
}

// rateLimitValue formats the RateLimit field of a decision: r is what
// remains; t is, while something remains, the seconds until the whole
// burst is back, and otherwise the seconds until the next request is
// admitted (Retry-After, for a denied one).
func rateLimitValue(name string, r Result) string {
	reset := r.ResetAfter
	if r.Remaining == 0 {
		reset = r.nextAfter()
	}
	b := make([]byte, 0, 32)
	b = strconv.AppendQuote(b, name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(r.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(reset), 10)
	return string(b)
}

// setHeaders writes the rate limit fields of a decision into h.
func setHeaders(h http.Header, policy, name string, r Result) {
	if policy != "" {
		h[headerRateLimitPolicy] = []string{policy}
	}
	h[headerRateLimit] = []string{rateLimitValue(name, r)}
	if !r.Allowed {
		h[headerRetryAfter] = []string{strconv.FormatInt(max(ceilSeconds(r.RetryAfter), 1), 10)}
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// ceilMillisecond rounds d up to the millisecond, for messages.
func ceilMillisecond(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
}
