// Package authz decides who may call which method: it verifies the
// caller's bearer token with a [token.Verifier] and checks that the token
// grants every permission the method declares in its proto options, as the
// [catalog.Catalog] precomputed them (have & need == need, per domain).
//
// One decision serves three entry points: a request gate that refuses a
// call on its headers alone, before any message is decoded; an interceptor
// for unary and streaming handlers, which skips calls the gate already
// decided; and [Authorizer.Authorize] for plain HTTP middleware. The
// gateway mounts gate and interceptor on its handlers; a backend behind it
// may mount the same to verify again.
//
//	cat, err := catalog.New(protoregistry.GlobalFiles)
//	...
//	v, err := token.NewVerifier(ctx, issuers)
//	...
//	az, err := authz.New(cat, v)
//	...
//	path, handler := licensingv1connect.NewLicensingServiceHandler(svc,
//		connect.WithRequestGate(az.Gate()),
//		connect.WithInterceptors(az.Interceptor()),
//	)
//
// Handlers find the caller with [token.FromContext]. Refusals are
// *connect.Error values users can act on:
//
//   - no token, or an invalid one: Unauthenticated (HTTP 401) with the
//     reason, such as "token expired", and a WWW-Authenticate challenge of
//     RFC 6750 (error="invalid_token"); the token itself is never echoed;
//   - a valid token without the permissions: PermissionDenied (HTTP 403)
//     naming them, such as "missing LIC.READ_ORDERS, ORD.WRITE";
//   - a method the catalog does not know: PermissionDenied;
//   - the issuer's keys not fetched yet: Unavailable (HTTP 503), since the
//     gateway is broken rather than the caller denied.
//
// With [WithResourceMetadata], every challenge also names the protected
// resource metadata (RFC 9728 §5.1), where a refused client finds which
// authorization servers to ask for a token and which scopes they grant:
//
//	WWW-Authenticate: Bearer realm="portcullis", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource", error="invalid_token", error_description="token expired"
//
// With [WithDPoP], a token bound to a DPoP key (cnf.jkt, RFC 9449) is
// accepted as "Authorization: DPoP <token>" with a DPoP proof of that key
// made for the call, verified at every call (proofs are unique; the
// token's verification stays cached). A bound token sent as Bearer, or
// without a valid proof, is refused with Unauthenticated and a DPoP
// challenge:
//
//	WWW-Authenticate: DPoP realm="portcullis", algs="ES256 ES384 EdDSA RS256 PS256", error="invalid_dpop_proof", error_description="DPoP proof htu does not match the request URL"
//
// and error="use_dpop_nonce" with a DPoP-Nonce header when the proof lacks
// the server's nonce. The proof must name the URL the client called:
// [dpop.RecordTarget] in front of the handlers puts it in the context.
//
// Each wraps its cause for [errors.As] and [errors.Is]: a *[DeniedError], or
// a *[token.Error] whose kind is a sentinel such as [token.ErrExpired]. Each
// also carries a google.rpc.ErrorInfo detail whose reason, such as
// TOKEN_EXPIRED or PERMISSION_MISSING, programs can switch on.
package authz
