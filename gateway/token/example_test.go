package token_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis/portcullis/gateway/token"
)

func Example() {
	ctx := context.Background()
	secret := []byte("an example secret of 32 bytes!!!")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v, err := token.NewVerifier(ctx, []token.Issuer{{
		Issuer:    "https://issuer.example",
		Audiences: []string{"https://api.example"},
		Secret:    secret,
		// One shared secret: its tokens need not name their key.
		AllowMissingKid: true,
	}}, token.WithClock(token.ClockFunc(func() time.Time { return now })))
	if err != nil {
		panic(err)
	}
	defer v.Close()

	// A token as the issuer mints it.
	sign := func(claims string) string {
		input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) +
			"." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	exp := now.Add(time.Hour).Unix()
	p, err := v.Verify(ctx, sign(fmt.Sprintf(
		`{"iss":"https://issuer.example","aud":"https://api.example","sub":"svc-1","client_id":"billing","exp":%d,"perms":{"LIC":3,"ORD":1},"tier":"pro"}`, exp)))
	if err != nil {
		panic(err)
	}
	fmt.Println(p.ClientID, p.Masks["LIC"], p.Masks["ORD"], p.Tier)

	// Refusals say why, and keep their kind.
	_, err = v.Verify(ctx, sign(fmt.Sprintf(
		`{"iss":"https://issuer.example","aud":"https://api.example","sub":"svc-1","exp":%d,"perms":{"LIC":1.5}}`, exp)))
	fmt.Println(err, errors.Is(err, token.ErrBadClaims))
	_, err = v.Verify(ctx, sign(`{"iss":"https://issuer.example","aud":"https://api.example","sub":"svc-1","exp":1700000000}`))
	fmt.Println(err, errors.Is(err, token.ErrExpired))
	// Output:
	// billing 3 1 pro
	// token perms claim: LIC is not an integer true
	// token expired true
}
