package config

import (
	"slices"

	"github.com/portcullis/portcullis/gateway/token"
)

// algorithmKey says what kind of key a JWS algorithm (RFC 7518, RFC 8037)
// needs: a public key, a shared secret, or neither because the gateway
// does not verify it ("none" among them). The token package's lists are
// the only lists of algorithms.
func algorithmKey(alg string) (publicKey, secret bool) {
	if slices.Contains(token.HMACAlgorithms(), alg) {
		return false, true
	}
	return slices.Contains(token.Algorithms(), alg), false
}
