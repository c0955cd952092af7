// Package introspect asks an OAuth authorization server whether a bearer
// token is active (RFC 7662 token introspection), for issuers whose tokens
// the gateway cannot or should not verify itself: opaque tokens, or the
// high-security profile where every call must be known to the issuer.
//
//	in, err := introspect.New("https://auth.example.com", "https://auth.example.com/oauth2/introspect", "gw", secret)
//	v, err := token.NewVerifier(ctx, nil, token.WithOpaque("https://auth.example.com", in.Introspect))
//
// Answers are cached, bounded in count: an active token for no longer than
// its exp and [WithCacheMax], an inactive one for [WithNegativeTTL]. A
// revocation at the issuer therefore takes effect at the gateway within
// the cache maximum (sooner with a revocation feed). Concurrent calls with
// the same new token share one request (single flight). A token found in
// the cache costs a hash and a map lookup and allocates nothing. When the
// issuer cannot be asked (down, slow, refusing the gateway's credentials,
// answering nonsense) the token is refused with [token.ErrKeysUnavailable]:
// the gateway fails closed, with Unavailable, not Unauthenticated.
//
// The token is never logged, nor put in an error.
//
// It is written here rather than taken from golang.org/x/oauth2 or a JOSE
// library because none of those has an introspection client, and the
// cache must hand out the gateway's own [token.Principal] without
// allocating.
package introspect
