package gateway

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/telemetry"
)

// chain holds the pieces every call of a routed service passes through.
// Its two methods are the one place that states their order; the pieces
// themselves do not know their position.
type chain struct {
	telemetry  *telemetry.Telemetry
	guard      *ratelimit.Guard // nil when the address guard is off
	authorizer *authz.Authorizer
	limiter    *ratelimit.Interceptor
}

// edge wraps the main listener's handler, outermost first:
//
//  1. telemetry.WrapHandler records every call that ends before the
//     decision below recorded it: calls connect refuses on their framing
//     (content type, timeout header) and calls refused while their body is
//     read or decoded (size limit, malformed body).
//  2. mux: the routed services' forwarding handlers (each a connect
//     handler with the options of [chain.handlerOptions]), gRPC health,
//     gRPC reflection, and Unimplemented, in the caller's protocol, for
//     everything else.
func (c *chain) edge(mux http.Handler) http.Handler {
	return c.telemetry.WrapHandler(mux)
}

// handlerOptions returns the options of every forwarding handler: the
// decision a call passes, in order, first is outermost.
//
// The gate decides on the request headers alone, before any byte of the
// body is read or inflated, so a refused call costs no body work:
//
//  1. telemetry.WrapGate times the gate and records each call it refuses:
//     a server span, the decision counter and the access line.
//  2. the address guard refuses, with ResourceExhausted and before any
//     cryptography, an address whose calls keep failing authentication,
//     unless the call's token is one already verified; it counts the
//     Unauthenticated refusals of the next step.
//  3. the authorizer verifies the token (signature, issuer, audience,
//     times, type) and AND-checks the method's required permissions; the
//     caller's principal goes into the context.
//  4. the rate limiter spends the caller's budget for the method: per
//     client id, or per address for a public method called anonymously.
//
// Calls the gate lets through then pass the interceptors, outermost first:
//
//  5. telemetry's server interceptor: the call's span (continuing the one
//     the gate's time started), its decision, counts and access line.
//  6. the rate limiter's interceptor: the RateLimit response headers, and
//     the message rate of client and bidi streams.
//
// and reach the forwarding handler.
func (c *chain) handlerOptions() []connect.HandlerOption {
	authenticate := c.authorizer.Gate()
	if c.guard != nil {
		authenticate = c.guard.Wrap(authenticate)
	}
	return []connect.HandlerOption{
		connect.WithRequestGate(c.telemetry.WrapGate(
			authenticate,
			c.limiter.Gate(),
		)),
		connect.WithInterceptors(
			c.telemetry.ServerInterceptor(),
			c.limiter,
		),
	}
}
