package forward

import "time"

// OutlierDetection says when an endpoint is taken out of rotation on the
// evidence of calls alone: after ConsecutiveFailures calls in a row found
// it unreachable (refused, reset or lost connections; not errors it
// sent), for BaseEjectionTime, doubled at each ejection in a row up to
// MaxEjectionTime. At most MaxEjectionPercent of the endpoints are ejected
// at once, so a backend of one endpoint is never ejected and an outage of
// every replica still reaches them. At the end of its ejection an endpoint
// takes calls again, once its health check passes when there is one (see
// [WithHealthCheck]).
type OutlierDetection struct {
	// ConsecutiveFailures ejects an endpoint; zero turns ejection off.
	ConsecutiveFailures int
	// BaseEjectionTime is the first ejection's length.
	BaseEjectionTime time.Duration
	// MaxEjectionTime bounds an ejection; an endpoint that stays in
	// rotation this long has its count of ejections forgiven.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent of the endpoints may be ejected at once.
	MaxEjectionPercent int
}

// DefaultOutlierDetection is the outlier detection of a Backend without
// [WithOutlierDetection]: five failures in a row eject an endpoint for 5s,
// then 10s, 20s... up to 2m; at most half of the endpoints are ejected.
var DefaultOutlierDetection = OutlierDetection{
	ConsecutiveFailures: 5,
	BaseEjectionTime:    5 * time.Second,
	MaxEjectionTime:     2 * time.Minute,
	MaxEjectionPercent:  50,
}

// WithOutlierDetection sets when an endpoint is ejected. The failures must
// not be negative, the times must be positive with the maximum at least
// the base, and the percentage between 0 and 100. The default is
// [DefaultOutlierDetection].
func WithOutlierDetection(o OutlierDetection) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		switch {
		case o.ConsecutiveFailures < 0:
			c.invalid("WithOutlierDetection: ConsecutiveFailures %d is negative", o.ConsecutiveFailures)
		case o.BaseEjectionTime <= 0 || o.MaxEjectionTime < o.BaseEjectionTime:
			c.invalid("WithOutlierDetection: BaseEjectionTime %v must be positive and MaxEjectionTime %v at least as long",
				o.BaseEjectionTime, o.MaxEjectionTime)
		case o.MaxEjectionPercent < 0 || o.MaxEjectionPercent > 100:
			c.invalid("WithOutlierDetection: MaxEjectionPercent %d is not between 0 and 100", o.MaxEjectionPercent)
		default:
			c.outlier = o
		}
	})
}

// WithBalancer sets how calls are spread over the endpoints. The default
// is [RoundRobin].
func WithBalancer(b Balancer) BackendOption {
	return backendOptionFunc(func(c *backendConfig) {
		if b != RoundRobin && b != LeastRequest {
			c.invalid("WithBalancer(%d): unknown balancer", b)
			return
		}
		c.balancer = b
	})
}
