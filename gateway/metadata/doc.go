// Package metadata publishes the gateway as an OAuth 2.0 protected
// resource: the protected resource metadata of RFC 9728, generated from the
// catalog and the configuration, so that a client refused with 401 can
// find out where to get a token and what to ask for.
//
//	md, err := metadata.New(cat, metadata.Resource{
//		Identifier:           "https://api.example.com",
//		AuthorizationServers: []string{"https://auth.example.com"},
//		Name:                 "Example API",
//	})
//	...
//	mux.Handle(md.Path(), md) // GET /.well-known/oauth-protected-resource
//	az, err := authz.New(cat, v, authz.WithResourceMetadata(md.URL()))
//
// The document holds:
//
//   - resource: the resource identifier, as configured;
//   - authorization_servers: the issuers whose tokens the gateway accepts;
//   - scopes_supported: every permission of the catalog, such as
//     "LIC.READ_ORDERS", in the catalog's order (domains by name,
//     permissions as declared), as the bundled issuer lists them;
//   - bearer_methods_supported: ["header"], since the gateway reads tokens
//     from the Authorization header only;
//   - resource_name, resource_documentation, resource_policy_uri and
//     resource_tos_uri when configured.
//
// It leaves out what the gateway does not do: jwks_uri and
// resource_signing_alg_values_supported (it signs no responses),
// tls_client_certificate_bound_access_tokens and the DPoP parameters (it
// binds no token to a key), authorization_details_types_supported.
//
// The document is served at the URL RFC 9728 §3 derives from the resource
// identifier: "/.well-known/oauth-protected-resource" inserted between the
// host and the path, so https://api.example.com/v1 publishes at
// https://api.example.com/.well-known/oauth-protected-resource/v1. Clients
// check that the document's resource is the identifier they derived the
// URL from (§3.3), which is why the identifier is configured rather than
// guessed from a request's Host header: behind a load balancer or a proxy,
// the gateway cannot tell the name its clients use, and a document built
// from a forged Host would name the attacker's choice.
//
// The document is built once, in [New], and served as the same bytes to
// GET and HEAD with Cache-Control (five minutes by default, see
// [WithMaxAge]) and Access-Control-Allow-Origin "*": it is public, needs no
// credentials, and a page on any origin may read it. Preflights that reach
// the handler are answered for every origin.
//
// RFC 9728 is small enough that no library is needed: the package is the
// document's struct, its validation, and a handler of a few lines.
package metadata
