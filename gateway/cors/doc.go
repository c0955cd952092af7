// Package cors lets browsers call the gateway from other origins: it answers
// CORS preflights and puts the CORS headers on every response to an allowed
// origin, error responses included. It is meant to be the outermost
// middleware of an HTTP server, so that a preflight is answered before any
// authentication and never reaches the handler it wraps (a backend), and so
// that a 401, 403, 429 or 503 written by an inner handler still carries
// Access-Control-Allow-Origin and the exposed headers a script needs to read
// it (WWW-Authenticate, Retry-After, RateLimit, grpc-status, ...).
//
//	c, err := cors.New(cors.Policy{
//		AllowedOrigins: []string{"https://app.example.com", "https://*.example.com"},
//		AllowCredentials: true,
//		MaxAge:           10 * time.Minute,
//	}, map[string]cors.Policy{
//		"/acme.billing.v1.BillingService/": {AllowedOrigins: []string{"https://billing.example.com"}},
//	}, cors.WithRouteResolver(restHandler.ServicePath))
//	if err != nil {
//		return err
//	}
//	srv.Handler = c.Wrap(mux)
//
// The protocol work is github.com/rs/cors's; the header lists of Connect and
// gRPC-Web are connectrpc.com/cors's. What this package adds is the choice
// of a policy per route (a service's RPC path prefix, and the REST paths the
// route resolver maps to it), the headers the gateway itself reads and
// writes ([AllowedHeaders], [ExposedHeaders]), and strict validation of the
// policies: origins are scheme://host[:port], patterns have one leading "*."
// in the host, and "*" never goes with credentials.
//
// # What browsers see
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) from
// an allowed origin, for an allowed method and headers, is answered 204 No
// Content with Access-Control-Allow-Origin (the origin, or "*"),
// Access-Control-Allow-Methods and Access-Control-Allow-Headers (the
// requested ones), Access-Control-Max-Age when the policy sets one, and
// Access-Control-Allow-Credentials when it allows credentials. Any other
// preflight (an origin, method or header not allowed) is answered 204 No
// Content without any Access-Control-Allow-* header, as rs/cors does: the
// browser then blocks the call, and nothing reveals which part failed.
// Neither kind reaches the wrapped handler.
//
// Every other request goes to the wrapped handler; when its origin is
// allowed, the response carries Access-Control-Allow-Origin,
// Access-Control-Expose-Headers and, if allowed, Access-Control-Allow-Credentials,
// whatever the status. A request from an origin not allowed gets no CORS
// header at all (only Vary: Origin), so the browser keeps the response from
// the script. CORS is no access control: requests from other clients are
// served alike, and the gateway still authenticates every call.
//
// # A plain HTTP handler
//
// Nothing here is specific to RPC: a token endpoint is wrapped the same way,
// with no routes, and its preflights are answered before the client
// authenticates:
//
//	c, err := cors.New(cors.Policy{AllowedOrigins: []string{"https://app.example.com"}}, nil)
//	mux.Handle("/oauth2/token", c.Wrap(tokenHandler))
package cors
