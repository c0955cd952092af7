// Package dpop checks DPoP proofs (RFC 9449): the signed JWT a client
// sends, in a DPoP header, with each request, to prove it holds the
// private key an access token is bound to (the token's cnf.jkt). A token
// copied from a log or a compromised backend is then useless without the
// key.
//
//	v, err := dpop.New(dpop.WithReplayStore(store))
//	...
//	proof, err := v.Verify(ctx, r.Header, dpop.Request{
//		Method:        r.Method,
//		URL:           "https://api.example.com/pkg.Service/Method",
//		AccessToken:   raw,                         // the token of "Authorization: DPoP <raw>"
//		KeyThumbprint: p.Confirmation.KeyThumbprint, // the token's cnf.jkt
//	})
//
// [Verifier.Verify] makes the checks of §4.3: exactly one DPoP header; a
// compact JWS of typ dpop+jwt signed with an asymmetric algorithm of the
// allowlist ("none" and HMAC never pass) by the public key of its jwk
// header, which must hold no private member; a jti of bounded length;
// htm and htu naming the request's method and URL (without query and
// fragment, both normalized as RFC 3986 §6.2.2 and §6.2.3 say); an iat in
// the window (by default 60s back and 5s ahead); an ath hashing the
// access token, when one comes with the proof; the server's nonce, when
// [WithNonces] requires one (§8); and the key's RFC 7638 thumbprint equal
// to the token's cnf.jkt. Then the proof is remembered, by a hash of its
// jti and key, for the whole window: in a bounded [Memory] store, or in
// [Redis] shared by every replica, so a proof is accepted once.
//
// The proof is parsed here rather than with a general JOSE library,
// because the checks of a resource server are few and specific and must
// be strict: a general JWS API accepts by default what a proof must not
// have (a key from elsewhere than jwk, an HMAC key, several signatures,
// the JSON serialization, unknown critical headers), and it decodes into
// maps at a cost paid on every call. Here a proof is one pass over two
// small JSON objects, bounded in size and depth, and one signature check.
//
// [RecordTarget] puts the method and URL a request came with into its
// context, for a verifier placed where only headers are seen, such as a
// connect request gate.
package dpop
