package cors

import (
	"net/http"
	"slices"

	connectcors "connectrpc.com/cors"
)

// gatewayRequestHeaders are the request headers the gateway reads on top
// of the protocols': the access token and its DPoP proof, the trace
// context, and the compression negotiation of Connect streams and gRPC-Web.
var gatewayRequestHeaders = []string{
	"Authorization",
	"DPoP",
	"Connect-Accept-Encoding",
	"Connect-Content-Encoding",
	"Grpc-Accept-Encoding",
	"Grpc-Encoding",
	"Traceparent",
	"Tracestate",
}

// gatewayResponseHeaders are the response headers the gateway writes that a
// script needs to read: the compression of Connect and gRPC-Web responses,
// and the headers of its refusals (RFC 6750 and RFC 9449 challenges, the
// DPoP-Nonce, RFC 9110 Retry-After, the IETF RateLimit fields).
var gatewayResponseHeaders = []string{
	"Connect-Accept-Encoding",
	"Connect-Content-Encoding",
	"DPoP-Nonce",
	"Grpc-Accept-Encoding",
	"Grpc-Encoding",
	"RateLimit",
	"RateLimit-Policy",
	"Retry-After",
	"WWW-Authenticate",
}

// AllowedMethods returns the methods every policy allows: Connect's and
// gRPC-Web's (GET and POST, from connectrpc.com/cors) and those of REST
// routes.
func AllowedMethods() []string {
	return slices.Concat(connectcors.AllowedMethods(), []string{http.MethodPut, http.MethodPatch, http.MethodDelete})
}

// AllowedHeaders returns the request headers every policy allows: those
// Connect and gRPC-Web clients send (from connectrpc.com/cors), and those
// the gateway reads, such as Authorization. A [Policy] adds its own.
func AllowedHeaders() []string {
	return appendNew(connectcors.AllowedHeaders(), gatewayRequestHeaders...)
}

// ExposedHeaders returns the response headers every policy lets scripts
// read: gRPC-Web's status headers (from connectrpc.com/cors), and those the
// gateway writes, such as WWW-Authenticate, Retry-After, RateLimit and
// RateLimit-Policy. A [Policy] adds its own, such as the Trailer-* headers
// of Connect unary responses that a script reads.
func ExposedHeaders() []string {
	return appendNew(connectcors.ExposedHeaders(), gatewayResponseHeaders...)
}

// appendNew returns list and then the names it does not hold yet, each
// once, in canonical form.
func appendNew(list []string, names ...string) []string {
	seen := make(map[string]bool, len(list)+len(names))
	out := make([]string, 0, len(list)+len(names))
	for _, name := range append(list[:len(list):len(list)], names...) {
		name = http.CanonicalHeaderKey(name)
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}
