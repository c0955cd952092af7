package config

// algorithmKey says what kind of key a JWS algorithm (RFC 7518, RFC 8037)
// needs: a public key, a shared secret, or neither because the gateway
// does not verify it ("none" among them). It is the configuration's only
// list of algorithms; it must name the same ones as the token package.
func algorithmKey(alg string) (publicKey, secret bool) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true, false
	case "HS256", "HS384", "HS512":
		return false, true
	}
	return false, false
}
