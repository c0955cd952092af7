// Package issuer is an OAuth 2.0 authorization server for machine clients:
// the client credentials grant (RFC 6749 §4.4), issuing JWT access tokens
// (RFC 9068) whose "perms" claim holds the permission masks of the proto
// catalog, domain → mask, as the gateway reads them.
//
// A client is registered with the names of the permissions it is granted
// (see [AddClient], or "portcullis clients add"); the issuer resolves them
// through the [catalog.Catalog], so a grant naming an unknown permission is
// an error when the registry loads. A token carries every granted
// permission, or the subset the client asks for with the scope parameter:
//
//	cat, err := catalog.New(protoregistry.GlobalFiles)
//	...
//	srv, err := issuer.New(issuer.Config{
//		IssuerURL:    "https://auth.example.com",
//		Audience:     "https://api.example.com",
//		KeyDir:       "/var/lib/portcullis/keys",
//		RegistryPath: "/etc/portcullis/clients.yaml",
//	}, cat)
//	...
//	defer srv.Close()
//	http.ListenAndServeTLS(":443", cert, key, srv.Handler())
//
// A client then gets a token with any OAuth 2.0 library:
//
//	cfg := clientcredentials.Config{
//		ClientID:     "billing-sync",
//		ClientSecret: secret,
//		TokenURL:     "https://auth.example.com/oauth2/token",
//		Scopes:       []string{"LIC.READ_ORDERS"}, // optional: fewer than granted
//	}
//	token, err := cfg.Token(ctx)
//
// The token's header is {"alg", "kid", "typ": "at+jwt"}; its claims are iss,
// sub and client_id (the client id), aud, iat, nbf (= iat), exp, jti (128
// random bits), scope (the permissions it carries, space-separated), perms
// (domain → mask, non-zero masks only) and tier (when the client has one).
//
// # Endpoints
//
// Under the path of the issuer URL: POST /oauth2/token, POST
// /oauth2/revoke, GET /revocations, GET /.well-known/jwks.json, and the
// metadata (RFC 8414) at GET /.well-known/oauth-authorization-server and
// GET /.well-known/openid-configuration, so a verifier needs only the
// issuer URL. The JWKS is served with a short max-age (5 minutes by
// default) and an ETag.
//
// The token endpoint answers errors as RFC 6749 §5.2 says, as JSON
// {"error", "error_description"} with Cache-Control: no-store:
// invalid_request (400; 405 for a method other than POST, 413 for a body
// over 16 KiB), invalid_client (401, with WWW-Authenticate: Basic),
// unsupported_grant_type and invalid_scope (400). invalid_grant and
// unauthorized_client cannot arise: the client credentials grant has no
// grant to be invalid, and every registered client may use it. A source
// address or client id over the limit of failed authentications gets 429
// with Retry-After and temporarily_unavailable: §5.2 has no code for it,
// and invalid_client would claim credentials were wrong that were not even
// checked.
//
// # Revocation
//
// A token ends before it expires when it is revoked: by its client, at the
// revocation endpoint (RFC 7009: authenticated as at the token endpoint,
// token=...; 200 even for a token that is not valid, unauthorized_client
// for another client's token); by an operator, with [RevokeToken] (by
// jti) or [RevokeClientTokens] (every token of a client issued before a
// time); and for every token of a client removed with [RevokeClient].
// Revocations are appended to a file beside the registry
// ([RevocationsPath]), which issuers poll every 250 ms
// ([WithRevocationPollInterval]), and served to gateways in the
// revocation feed (revocation.Feed, named revocation_feed_endpoint in the
// metadata) and, with [WithRevocationStore], in Redis. A revocation lasts
// as long as the token it revokes, plus [RetentionMargin]; a client
// revocation, the maximum token lifetime after its time. Gateways check
// every token against them locally (revocation.Set).
//
// A client removed from the registry gets no new token once the issuer
// has read its revocation, which every token request checks for; a
// client revoked and added again within one second gets its first token
// in the next second, as iat counts whole seconds.
//
// # Introspection
//
// Resource servers that do not verify tokens themselves (a gateway that
// declares the issuer opaque) ask the introspection endpoint, RFC 7662
// ([IntrospectionPath], named introspection_endpoint in the metadata):
// POST token=... authenticated as at the token endpoint, by a client
// registered with introspect: true ([Client].Introspect). Another client
// gets 403 unauthorized_client; a caller that does not authenticate, 401
// invalid_client. An active token is described by active, scope,
// client_id, sub, exp, iat, nbf, aud, iss, jti, token_type ("Bearer"),
// perms (domain → mask) and tier; a token that is expired, revoked (the
// issuer holds every revocation it serves), malformed or another issuer's
// gets {"active":false} and nothing more.
//
// # Token exchange
//
// With [WithExchange] (issuer serve --exchange FILE, [ReadExchange]), the
// token endpoint also takes grant_type
// urn:ietf:params:oauth:grant-type:token-exchange (RFC 8693): a
// subject_token of a trusted external issuer, verified as the gateway
// verifies tokens (gateway/token), becomes a token of this issuer. Its
// permissions come from configuration, not from the external token: the
// grants and tier of the registry client its sub or client_id maps to, or
// else the union of the claim rules it matches (groups holding "readers",
// scope naming "orders"); scope narrows them as for client_credentials.
// The exchanging client must be registered with exchange: true
// ([Client].Exchange), and becomes the act claim, unless an actor_token
// names the actor; with [Exchange].Public, callers without client
// authentication may exchange too. The token's sub is the external
// subject, its aud the issuer's audience or a configured resource asked
// for with audience or resource, and it expires no later than the subject
// token. Errors: invalid_grant (the subject or actor token does not
// verify, or no rule maps it), invalid_target, unsupported_token_type,
// invalid_scope, unauthorized_client, invalid_request.
//
// # Certificate-bound tokens
//
// With [WithMutualTLS], served behind [TLSConfig] (issuer serve
// --client-ca FILE), the issuer asks clients for a TLS certificate without
// requiring one, and does RFC 8705. A client registered with
// [CertificateAuth] has no secret: it authenticates with its certificate
// and the client_id of the form, at every endpoint that authenticates
// clients. tls_client_auth ([AuthTLSClient]) verifies the chain against
// the client CA and matches the one registered subject DN, SAN URI or
// SAN DNS name; self_signed_tls_client_auth ([AuthSelfSignedTLSClient])
// matches one of the registered certificates byte for byte. A wrong,
// missing or unregistered certificate is 401 invalid_client, the same
// answer for an unknown client, counted by the failure limits.
//
// A token issued over a connection with a client certificate, to any
// client, is bound to it: cnf {"x5t#S256": base64url SHA-256 of the
// DER}, which the gateway compares with the certificate of each call.
// The TLS handshake proved the client holds the certificate's key, which
// is all binding needs. A client registered with
// [Client].CertificateBoundTokens gets no token without a certificate
// (400 invalid_request). Introspection answers a bound token's cnf; the
// metadata has tls_client_certificate_bound_access_tokens and the two
// methods.
//
// # Secrets
//
// The registry keeps only argon2id hashes (PHC string format; bcrypt hashes
// are accepted too). An unknown client and a wrong secret take the same
// path, with a hash verified against a dummy for the unknown client, and
// get the same answer. Successful verifications are cached for a few
// minutes, keyed by an HMAC of id and secret, so that clients fetching
// tokens often do not pay argon2id's deliberate cost each time.
//
// # Keys and rotation
//
// Signing keys are private JWK files (mode 0600), one per key and named
// after its kid (the RFC 7638 thumbprint), in a directory of mode 0700 that
// others may not write to. They carry two extra members, created_at and
// activates_at. A first key is generated when the directory holds none.
// [RotateKey] adds a key that signs from its activation; the key it
// replaces stays in the JWKS until every token it signed has expired (the
// maximum token lifetime plus [RetentionMargin]), then leaves it.
//
// # Administration
//
// With [WithAdmin], the issuer also serves portcullis.admin.v1.ClientAdminService
// (Connect, gRPC and gRPC-Web; generated clients in gen/portcullis/admin/v1
// and, for browsers, services/webclient/gen): ListClients, ListPermissions,
// CreateClient (the secret is answered once; a client that authenticates
// with its TLS certificate, which needs [WithMutualTLS], has none),
// UpdateGrants, RotateSecret and RevokeClient, each applied to the
// registry file at once. It is a
// service like any other: its methods require the permissions of the
// PORTCULLIS domain, declared in its proto, and the gateway's own
// authorizer checks them on the issuer's own tokens. A client granted
// PORTCULLIS.MANAGE_CLIENTS still grants only what its token holds, and
// acts only on clients whose every grant its token holds: no caller can
// make a client, or obtain a secret, more powerful than itself. Refusals
// of that rule are PermissionDenied with the google.rpc.ErrorInfo reason
// [ReasonGrantNotHeld]. Every change is logged with the caller's client
// id, never with a secret.
//
// # Reloading
//
// The issuer polls the key directory and the registry file every 2 seconds
// ([WithReloadInterval]) and applies changes without a restart; registry
// and key file writes are atomic renames. A file that fails to load leaves
// the previous state in place and is logged; [Server.Reload] does the same
// on demand (on SIGHUP, say) and returns the error.
package issuer
