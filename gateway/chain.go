package gateway

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/rest"
	"github.com/portcullis/portcullis/gateway/telemetry"
)

// chain holds the pieces every call of a routed service passes through.
// Its two methods are the one place that states their order; the pieces
// themselves do not know their position.
type chain struct {
	telemetry  *telemetry.Telemetry
	generation uint64           // the configuration generation the chain belongs to
	guard      *ratelimit.Guard // nil when the address guard is off
	authorizer *authz.Authorizer
	limiter    *ratelimit.Interceptor

	certificates *certificateEdge // nil when no call can present a client certificate

	cors       *cors.Policy                     // the gateway's CORS policy; nil: no origin is allowed
	routeCORS  map[string]cors.Policy           // by service path "/pkg.Service/"
	rest       []protoreflect.ServiceDescriptor // services whose REST routes are served; nil: none
	restOption []rest.Option
	dpop       bool // DPoP proofs are verified: calls bearing one carry their URL
}

// edge wraps the main listener's handler, outermost first:
//
//  1. CORS: preflights from allowed origins are answered here, before
//     authentication, and never reach a backend; every answer to an
//     allowed origin, refusals included, carries the CORS headers, so a
//     page can read why it was refused.
//  2. client certificate: the identity of the call's verified client
//     certificate (its own mutual TLS handshake's, or the one a trusted
//     proxy passes in tls.client_cert_header, verified here) goes into the
//     request context, for the decision, the access log and the trace.
//     It sits outside telemetry so that every recorded call carries it.
//  3. telemetry.WrapGeneration (WrapHandler, naming the configuration
//     generation in every call's span and access line) records every call
//     that ends before the decision below recorded it: calls connect
//     refuses on their framing (content type, timeout header) and calls
//     refused while their body is read or decoded (size limit, malformed
//     body).
//  4. dpop.RecordTarget: a request bearing a DPoP proof carries, in its
//     context, the method and URL the client sent it to, which its proof
//     must name; outside REST, since the proof of a REST call names its
//     REST URL; requests without a proof pass at no cost.
//  5. REST: a request on a google.api.http route becomes a Connect call of
//     its method, which then passes the same decision as any RPC; RPC
//     paths pass through untouched.
//  6. mux: the routed services' forwarding handlers (each a connect
//     handler with the options of [chain.forwardOptions]), gRPC health,
//     gRPC reflection, and Unimplemented, in the caller's protocol, for
//     everything else.
func (c *chain) edge(mux http.Handler) (http.Handler, error) {
	h := mux
	var resolver func(method, path string) (string, bool)
	if c.rest != nil {
		r, err := rest.New(c.rest, mux, c.restOption...)
		if err != nil {
			return nil, fmt.Errorf("rest: %w", err)
		}
		h, resolver = r, r.ServicePath
	}
	if c.dpop {
		h = dpop.RecordTarget(h)
	}
	h = c.telemetry.WrapGeneration(h, c.generation)
	if c.certificates != nil {
		c.certificates.next = h
		h = c.certificates
	}
	if c.cors != nil || len(c.routeCORS) > 0 {
		var def cors.Policy
		if c.cors != nil {
			def = *c.cors
		}
		var opts []cors.Option
		if resolver != nil {
			opts = append(opts, cors.WithRouteResolver(resolver))
		}
		co, err := cors.New(def, c.routeCORS, opts...)
		if err != nil {
			return nil, fmt.Errorf("cors: %w", err)
		}
		h = co.Wrap(h)
	}
	return h, nil
}

// forwardOptions returns the options of every forwarding handler: the
// decision a call passes, in order, first is outermost.
//
// The gate decides on the request headers alone, before any byte of the
// body is read or inflated, so a refused call costs no body work:
//
//  1. telemetry.WrapGate times the gate and records each call it refuses:
//     a server span, the decision counter and the access line.
//  2. on a route with client_certificate required, a call without a
//     verified client certificate is refused with Unauthenticated, "client
//     certificate required", before any token work.
//  3. the address guard refuses, with ResourceExhausted and before any
//     cryptography, an address whose calls keep failing authentication,
//     unless the call's token is one already verified; it counts the
//     Unauthenticated refusals of the next two steps.
//  4. on a route that accepts an external issuer's tokens, such a token is
//     exchanged for an internal one (RFC 8693), which takes its place.
//  5. the authorizer verifies the token (signature, issuer, audience,
//     times, type; not revoked; or introspected, for an opaque issuer),
//     AND-checks the method's required permissions, and applies its
//     step-up (max token age) and high-value (fresh revocations) rules;
//     the caller's principal goes into the context.
//  6. the rate limiter spends the caller's budget for the method: per
//     client id, or per address for a public method called anonymously.
//
// Calls the gate lets through then pass the interceptors, outermost first:
//
//  7. telemetry's server interceptor: the call's span (continuing the one
//     the gate's time started), its decision, counts and access line.
//  8. the rate limiter's interceptor: the RateLimit response headers, and
//     the message rate of client and bidi streams.
//
// and reach the forwarding handler.
//
// exchange and certificate are the route's gates of steps 4 and 2; nil
// for none.
func (c *chain) forwardOptions(exchange, certificate connect.RequestGateFunc) []forward.Option {
	authenticate := c.authorizer.Gate()
	if exchange != nil {
		authenticate = sequence(exchange, authenticate)
	}
	if c.guard != nil {
		authenticate = c.guard.Wrap(authenticate)
	}
	return []forward.Option{
		forward.WithGate(c.telemetry.WrapGate(
			certificate,
			authenticate,
			c.limiter.Gate(),
		)),
		forward.WithInterceptors(
			c.telemetry.ServerInterceptor(),
			c.limiter,
		),
	}
}

// grpcEdge is, for a call grpc-go's server took, what the edge does for
// the calls of net/http's (see [chain.edge]), given a request that stands
// for the call: the identity of its client certificate, its DPoP target,
// and the start of its record. CORS and REST do not apply to gRPC.
func (c *chain) grpcEdge(r *http.Request) context.Context {
	ctx := r.Context()
	if c.certificates != nil {
		ctx = c.certificates.context(ctx, r)
	}
	if c.dpop {
		ctx = dpop.TargetContext(ctx, r)
	}
	return c.telemetry.StartCall(ctx, c.generation)
}

// edgeConfig takes the edge's settings from cfg.
func (c *chain) edgeConfig(cfg *config.Config, services []protoreflect.ServiceDescriptor) {
	if cfg.CORS != nil {
		p := cfg.CORS.Policy()
		c.cors = &p
	}
	for i, r := range cfg.Routes {
		if r.CORS != nil {
			if c.routeCORS == nil {
				c.routeCORS = make(map[string]cors.Policy)
			}
			c.routeCORS["/"+string(services[i].FullName())+"/"] = r.CORS.Policy()
		}
	}
	if cfg.REST.IsEnabled() {
		c.rest = services
		c.restOption = []rest.Option{rest.WithMaxMessageBytes(int64(cfg.Limits.MaxMessageBytes))}
	}
}

// sequence runs gate a, then b with the context a returned, as one gate.
func sequence(a, b connect.RequestGateFunc) connect.RequestGateFunc {
	return func(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
		next, err := a(ctx, spec, peer, header)
		if err != nil {
			return next, err
		}
		if next != nil {
			ctx = next
		}
		return b(ctx, spec, peer, header)
	}
}
