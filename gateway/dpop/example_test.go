package dpop_test

import (
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/dpop"
)

// The thumbprint of the key of RFC 7638 §3.1: what a token bound to it
// carries as cnf.jkt.
func ExampleThumbprint() {
	jwk := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	tp, err := dpop.Thumbprint([]byte(jwk))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tp)
	// Output: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
}

// A verifier shared by replicas: proofs remembered in Redis, and nonces
// of a key every replica holds.
func ExampleNew() {
	nonces, err := dpop.NewNonces([]byte("a secret of thirty-two bytes, or more"), 5*time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := dpop.New(
		dpop.WithWindow(time.Minute, 5*time.Second),
		dpop.WithAlgorithms("ES256", "EdDSA"),
		dpop.WithReplayStore(dpop.NewMemory(1<<16)), // or dpop.NewRedis(client, "portcullis:dpop:", 50*time.Millisecond)
		dpop.WithNonces(nonces),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("DPoP algs=%q\n", v.Algorithms())
	// Output: DPoP algs="ES256 EdDSA"
}
