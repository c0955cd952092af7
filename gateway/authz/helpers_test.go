package authz_test

import (
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
)

func mustDecode(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustParse(b []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// asn1Sig encodes an ECDSA signature in ASN.1 DER, as crypto/ecdsa does.
func asn1Sig(r, s []byte) []byte {
	sig, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
	if err != nil {
		panic(err)
	}
	return sig
}
