package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// tokenMint signs the load generator's tokens.
type tokenMint struct {
	key jwk.Key
	seq atomic.Int64 // makes every jti unique
}

// claims are what a token says; the zero value of a field is the valid
// one, so that a probe changes only what it tests.
type claims struct {
	expired  bool
	perms    map[string]uint64
	wrongKey jwk.Key
	audience string
}

func (m *tokenMint) token(c claims) (string, error) {
	exp := time.Now().Add(time.Hour)
	if c.expired {
		exp = time.Now().Add(-time.Minute)
	}
	perms := c.perms
	if perms == nil {
		perms = map[string]uint64{"ORD": 3, "LIC": 7}
	}
	aud := c.audience
	if aud == "" {
		aud = "portcullis"
	}
	tok, err := jwt.NewBuilder().
		Issuer("loadtest").
		Audience([]string{aud}).
		Subject("loadtest").
		IssuedAt(time.Now().Add(-2*time.Minute)).
		Expiration(exp).
		JwtID(fmt.Sprintf("load-%d-%d", m.seq.Add(1), time.Now().UnixNano())).
		Claim("client_id", "loadtest").
		Claim("tier", "bench").
		Claim("perms", perms).
		Build()
	if err != nil {
		return "", err
	}
	// RFC 9068 access tokens say so in typ; jwx would write "JWT".
	headers := jws.NewHeaders()
	if err := headers.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	key := m.key
	if c.wrongKey != nil {
		key = c.wrongKey
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, key, jws.WithProtectedHeaders(headers)))
	return string(signed), err
}

// mint signs n distinct valid tokens on every core, before a measurement.
func (m *tokenMint) mint(n int) ([]string, error) {
	out := make([]string, n)
	var next atomic.Int64
	errs := make([]error, runtime.NumCPU())
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if out[i], errs[w] = m.token(claims{}); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// newSigningKey returns a new ES256 private key named kid.
func newSigningKey(kid string) (jwk.Key, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	_ = key.Set(jwk.KeyIDKey, kid)
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256)
	return key, nil
}

// tokenList hands out pre-minted tokens, each once.
type tokenList struct {
	tokens []string
	next   atomic.Int64
}

// take returns the next token, or false when none is left.
func (l *tokenList) take() (string, bool) {
	i := int(l.next.Add(1)) - 1
	if i >= len(l.tokens) {
		return "", false
	}
	return l.tokens[i], true
}

// checkPolicy shows that t enforces the policy before it is measured: a
// valid token passes, and no token, an expired one, one signed by another
// key, one for another audience and one missing a permission of the method
// are each refused. A peer that let them through would be measured doing
// less than the gateway.
func (s *stack) checkPolicy(ctx context.Context, t target) error {
	other, err := newSigningKey("other")
	if err != nil {
		return err
	}
	probes := []struct {
		name  string
		c     claims
		none  bool
		allow bool
	}{
		{name: "valid token", allow: true},
		{name: "no token", none: true},
		{name: "expired token", c: claims{expired: true}},
		{name: "token signed by another key", c: claims{wrongKey: other}},
		{name: "token for another audience", c: claims{audience: "elsewhere"}},
		{name: "token without LIC.READ_REQUIREMENTS", c: claims{perms: map[string]uint64{"ORD": 3, "LIC": 6}}},
		{name: "token without ORD.WRITE", c: claims{perms: map[string]uint64{"ORD": 1, "LIC": 7}}},
	}
	httpClient := newHTTPClient()
	defer httpClient.CloseIdleConnections()
	for _, protocol := range []string{"connect", "grpc"} {
		if !serves(t, protocol) {
			continue
		}
		var opts []connect.ClientOption
		if protocol == "grpc" {
			opts = append(opts, connect.WithGRPC())
		}
		client := ordersv1connect.NewOrdersServiceClient(httpClient, s.url(t), opts...)
		for _, p := range probes {
			req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}}})
			if !p.none {
				tok, err := s.tokens.token(p.c)
				if err != nil {
					return err
				}
				req.Header().Set("Authorization", "Bearer "+tok)
			}
			_, err := client.PlaceOrder(ctx, req)
			switch {
			case p.allow && err != nil:
				return fmt.Errorf("%s %s: a %s is refused: %w", t, protocol, p.name, err)
			case !p.allow && err == nil:
				return fmt.Errorf("%s %s: a %s is let through", t, protocol, p.name)
			case !p.allow && !refusal(err):
				return fmt.Errorf("%s %s: a %s fails with %v, not a refusal", t, protocol, p.name, err)
			}
		}
	}
	return nil
}

// refusal reports whether err is an authentication or permission refusal.
func refusal(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return true
	}
	return strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "403")
}
