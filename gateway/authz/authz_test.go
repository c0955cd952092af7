package authz_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const (
	audience = "https://api.test"
	secretIs = "https://secret.test"
)

var secret = []byte("this-is-a-32-byte-shared-secret!")

// world is an issuer with a real key server, a verifier and authorizer
// trusting it, and the example services behind them, twice: with gate and
// interceptor, and with the interceptor alone.
type world struct {
	idp, evil   *jwttest.IdP
	ec, rsa, ed *jwttest.Signer // the issuer's keys
	ec2         *jwttest.Signer // another ES256 key of the issuer
	spare       *jwttest.Signer // a key of the issuer, not in its key set
	attacker    *jwttest.Signer // a key of nobody trusted, served by evil
	mac         *jwttest.Signer // the shared secret of secretIs
	clock       *countingClock
	authz       *authz.Authorizer
	servers     map[string]string // mode → URL
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		ec: jwttest.NewEC("ec-1"), rsa: jwttest.NewRSA("rsa-1", 0), ed: jwttest.NewEd("ed-1"), ec2: jwttest.NewEC("ec-3"),
		spare: jwttest.NewEC("ec-2"), attacker: jwttest.NewEC("evil"), mac: jwttest.NewHMAC(secret),
		clock: &countingClock{},
	}
	w.clock.now.Store(jwttest.Epoch.UnixNano())
	w.idp = jwttest.NewIdP(t, w.ec, w.rsa, w.ed, w.ec2)
	w.evil = jwttest.NewIdP(t, w.attacker)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer:    w.idp.Issuer,
		Audiences: []string{audience},
		JWKSURL:   w.idp.URL + "/jwks.json",
		// HS256 is allowed on purpose: then it is the key's type that stops
		// HMAC tokens "signed" with a public key.
		Algorithms: []string{"RS256", "ES256", "EdDSA", "HS256"},
		Type:       "at+jwt",
	}, {
		Issuer: secretIs, Audiences: []string{audience}, Secret: secret, AllowMissingKid: true,
	}}, token.WithClock(w.clock), token.WithClaims("scope"), token.WithRevocations(revoked(t, w.idp.Issuer)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if err := v.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.authz, err = authz.New(testCatalog(t), v, authz.WithClock(w.clock))
	if err != nil {
		t.Fatal(err)
	}
	w.servers = map[string]string{
		"gate":        serve(t, connect.WithRequestGate(w.authz.Gate()), connect.WithInterceptors(w.authz.Interceptor())),
		"interceptor": serve(t, connect.WithInterceptors(w.authz.Interceptor())),
	}
	return w
}

// claims returns valid claims of the issuer granting perms.
func (w *world) claims(perms any) map[string]any {
	c := jwttest.ClaimsAt(w.idp.Issuer, audience, jwttest.Epoch)
	c["perms"] = perms
	return c
}

// with returns valid claims with changes; a nil value removes a claim.
func (w *world) with(changes map[string]any) map[string]any {
	c := w.claims(map[string]any{"LIC": 7, "ORD": 3})
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

type authCase struct {
	name   string
	method string                // default GetLicenceOrder
	auth   func(w *world) string // the Authorization header; nil for none
	// code and msg are what the client sees; code 0 means success, and
	// then msg is who the handler saw calling.
	code connect.Code
	msg  string
	// reason is the ErrorInfo reason, when code is not 0.
	reason string
}

func bearer(mint func(w *world) string) func(w *world) string {
	return func(w *world) string { return "Bearer " + mint(w) }
}

func perms(p map[string]any) func(w *world) string {
	return bearer(func(w *world) string { return w.ec.Mint(nil, w.claims(p)) })
}

func claims(changes map[string]any) func(w *world) string {
	return bearer(func(w *world) string { return w.ec.Mint(nil, w.with(changes)) })
}

func rawPerms(perms string) func(w *world) string {
	return bearer(func(w *world) string {
		return w.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`,
			fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"s","exp":%d,"perms":%s}`, w.idp.Issuer, audience, jwttest.Epoch.Add(time.Hour).Unix(), perms))
	})
}

// revoked returns a set of revocations of issuer: the token "revoked-jti"
// and the tokens of client "revoked-client" issued before jwttest.Epoch.
func revoked(t *testing.T, issuer string) *revocation.Set {
	t.Helper()
	set, err := revocation.New(t.Context(), revocation.WithClock(func() time.Time { return jwttest.Epoch }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	exp := jwttest.Epoch.Add(time.Hour)
	if err := set.Add(
		revocation.Revocation{Issuer: issuer, TokenID: "revoked-jti", Expires: exp},
		revocation.Revocation{Issuer: issuer, ClientID: "revoked-client", Before: jwttest.Epoch, Expires: exp},
	); err != nil {
		t.Fatal(err)
	}
	return set
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	at := func(d time.Duration) any { return jwttest.Epoch.Add(d).Unix() }
	cases := []authCase{
		// Valid tokens and each permission subset: allowed exactly when the AND holds.
		{name: "valid", auth: perms(map[string]any{"LIC": 2}), msg: "billing"},
		{name: "valid RS256", auth: bearer(func(w *world) string { return w.rsa.Mint(nil, w.with(nil)) }), msg: "billing"},
		{name: "valid EdDSA", auth: bearer(func(w *world) string { return w.ed.Mint(nil, w.with(nil)) }), msg: "billing"},
		{name: "valid HS256 of the secret issuer", auth: bearer(func(w *world) string {
			return w.mac.Mint(nil, jwttest.ClaimsAt(secretIs, audience, jwttest.Epoch))
		}), msg: "billing"},
		{name: "bearer scheme in lower case", auth: func(w *world) string { return "bearer " + w.ec.Mint(nil, w.with(nil)) }, msg: "billing"},
		{name: "sub when no client_id", auth: claims(map[string]any{"client_id": nil}), msg: "svc-billing"},
		{name: "other permission only", auth: perms(map[string]any{"LIC": 1, "ORD": 3}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "no perms claim", auth: claims(map[string]any{"perms": nil}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "two of two", method: "CreateLicenceOrder", auth: perms(map[string]any{"LIC": 6}), msg: "billing"},
		{name: "all bits", method: "CreateLicenceOrder", auth: perms(map[string]any{"LIC": 1<<53 - 1}), msg: "billing"},
		{name: "first of two", method: "CreateLicenceOrder", auth: perms(map[string]any{"LIC": 2}), code: connect.CodePermissionDenied, msg: "missing LIC.WRITE_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "second of two", method: "CreateLicenceOrder", auth: perms(map[string]any{"LIC": 4}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "none of two", method: "CreateLicenceOrder", auth: perms(map[string]any{"LIC": 0, "ORD": 3}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_ORDERS, LIC.WRITE_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "two domains", method: "PlaceOrder", auth: perms(map[string]any{"LIC": 1, "ORD": 2}), msg: "billing"},
		{name: "two domains, one missing", method: "PlaceOrder", auth: perms(map[string]any{"ORD": 3}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_REQUIREMENTS", reason: authz.ReasonPermissionMissing},
		{name: "two domains, both missing", method: "PlaceOrder", auth: perms(map[string]any{}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_REQUIREMENTS, ORD.WRITE", reason: authz.ReasonPermissionMissing},
		{name: "service default", method: "GetOrder", auth: perms(map[string]any{"ORD": 1}), msg: "billing"},
		{name: "service default missing", method: "GetOrder", auth: perms(map[string]any{"ORD": 2, "LIC": 7}), code: connect.CodePermissionDenied, msg: "missing ORD.READ", reason: authz.ReasonPermissionMissing},
		{name: "server stream", method: "WatchLicenceOrders", auth: perms(map[string]any{"LIC": 2}), msg: "billing"},
		{name: "server stream denied", method: "WatchLicenceOrders", auth: perms(map[string]any{"LIC": 5}), code: connect.CodePermissionDenied, msg: "missing LIC.READ_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "client stream", method: "ImportOrders", auth: perms(map[string]any{"LIC": 4, "ORD": 2}), msg: "billing"},
		{name: "client stream denied", method: "ImportOrders", auth: perms(map[string]any{"ORD": 2}), code: connect.CodePermissionDenied, msg: "missing LIC.WRITE_ORDERS", reason: authz.ReasonPermissionMissing},
		{name: "bidi stream", method: "SyncOrders", auth: perms(map[string]any{"LIC": 2, "ORD": 3}), msg: "billing"},
		{name: "bidi stream denied", method: "SyncOrders", auth: perms(map[string]any{"LIC": 2, "ORD": 1}), code: connect.CodePermissionDenied, msg: "missing ORD.WRITE", reason: authz.ReasonPermissionMissing},
		{name: "bidi stream no token", method: "SyncOrders", code: connect.CodeUnauthenticated, msg: "missing bearer token", reason: authz.ReasonTokenMissing},

		// Public methods.
		{name: "public without token", method: "ListJurisdictions", msg: "anonymous"},
		{name: "public with token", method: "ListJurisdictions", auth: perms(map[string]any{}), msg: "billing"},
		{name: "public with expired token", method: "ListJurisdictions", auth: claims(map[string]any{"exp": at(-time.Hour)}), code: connect.CodeUnauthenticated, msg: "token expired", reason: authz.ReasonTokenExpired},
		{name: "public with garbage", method: "ListJurisdictions", auth: func(*world) string { return "Bearer garbage" }, code: connect.CodeUnauthenticated, msg: "token is not a compact JWS", reason: authz.ReasonTokenMalformed},

		// Missing tokens.
		{name: "no token", code: connect.CodeUnauthenticated, msg: "missing bearer token", reason: authz.ReasonTokenMissing},
		{name: "basic scheme", auth: func(*world) string { return "Basic dXNlcjpwYXNz" }, code: connect.CodeUnauthenticated, msg: "missing bearer token", reason: authz.ReasonTokenMissing},
		{name: "empty bearer", auth: func(*world) string { return "Bearer " }, code: connect.CodeUnauthenticated, msg: "empty bearer token", reason: authz.ReasonTokenMalformed},

		// Time.
		{name: "expired", auth: claims(map[string]any{"exp": at(-2 * time.Minute)}), code: connect.CodeUnauthenticated, msg: "token expired", reason: authz.ReasonTokenExpired},
		{name: "expired within skew", auth: claims(map[string]any{"exp": at(-59 * time.Second)}), msg: "billing"},
		{name: "expired beyond skew", auth: claims(map[string]any{"exp": at(-60 * time.Second)}), code: connect.CodeUnauthenticated, msg: "token expired", reason: authz.ReasonTokenExpired},
		{name: "not yet valid", auth: claims(map[string]any{"nbf": at(time.Hour)}), code: connect.CodeUnauthenticated, msg: "token not valid yet", reason: authz.ReasonTokenNotYetValid},
		{name: "not before within skew", auth: claims(map[string]any{"nbf": at(60 * time.Second)}), msg: "billing"},
		{name: "not before beyond skew", auth: claims(map[string]any{"nbf": at(61 * time.Second)}), code: connect.CodeUnauthenticated, msg: "token not valid yet", reason: authz.ReasonTokenNotYetValid},
		{name: "issued in the future", auth: claims(map[string]any{"iat": at(2 * time.Minute)}), code: connect.CodeUnauthenticated, msg: "token issued in the future", reason: authz.ReasonTokenNotYetValid},
		{name: "fractional exp", auth: claims(map[string]any{"exp": float64(jwttest.Epoch.Unix()) + 0.5}), msg: "billing"},
		{name: "exp as string", auth: claims(map[string]any{"exp": "2030-01-01"}), code: connect.CodeUnauthenticated, msg: "token exp claim is not a NumericDate", reason: authz.ReasonTokenBadClaims},
		{name: "no exp", auth: claims(map[string]any{"exp": nil}), code: connect.CodeUnauthenticated, msg: "token has no exp claim", reason: authz.ReasonTokenBadClaims},

		// Revocation.
		{name: "revoked token", auth: claims(map[string]any{"jti": "revoked-jti"}), code: connect.CodeUnauthenticated, msg: "token revoked", reason: authz.ReasonTokenRevoked},
		{name: "revoked token on a public method", method: "ListJurisdictions", auth: claims(map[string]any{"jti": "revoked-jti"}), code: connect.CodeUnauthenticated, msg: "token revoked", reason: authz.ReasonTokenRevoked},
		{name: "revoked client", auth: claims(map[string]any{"client_id": "revoked-client", "iat": at(-time.Second)}), code: connect.CodeUnauthenticated, msg: "token revoked", reason: authz.ReasonTokenRevoked},
		{name: "client revoked before the token", auth: claims(map[string]any{"client_id": "revoked-client"}), msg: "revoked-client"},

		// Bound tokens: a certificate-bound token proves nothing without its certificate.
		{name: "certificate-bound token without a certificate", auth: claims(map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}), code: connect.CodeUnauthenticated, msg: "token is bound to a client certificate, and the call has none", reason: authz.ReasonTokenUnbound},
		{name: "token bound to what the gateway cannot check", auth: claims(map[string]any{"cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}}), code: connect.CodeUnauthenticated, msg: "token cnf claim binds the token to something the gateway cannot check (only x5t#S256 and jkt are understood)", reason: authz.ReasonTokenBadClaims},

		// Issuer and audience.
		{name: "wrong issuer", auth: claims(map[string]any{"iss": "https://evil.test"}), code: connect.CodeUnauthenticated, msg: "token issuer not trusted", reason: authz.ReasonTokenUntrusted},
		{name: "no issuer", auth: claims(map[string]any{"iss": nil}), code: connect.CodeUnauthenticated, msg: "token has no iss claim", reason: authz.ReasonTokenBadClaims},
		{name: "wrong audience", auth: claims(map[string]any{"aud": "https://other.test"}), code: connect.CodeUnauthenticated, msg: "token audience not accepted", reason: authz.ReasonTokenUntrusted},
		{name: "audience in a list", auth: claims(map[string]any{"aud": []string{"https://other.test", audience}}), msg: "billing"},
		{name: "audience not in a list", auth: claims(map[string]any{"aud": []string{"https://other.test"}}), code: connect.CodeUnauthenticated, msg: "token audience not accepted", reason: authz.ReasonTokenUntrusted},
		{name: "audience of wrong type", auth: claims(map[string]any{"aud": []any{audience, 1}}), code: connect.CodeUnauthenticated, msg: "token aud claim is not a string or an array of strings", reason: authz.ReasonTokenBadClaims},
		{name: "no audience", auth: claims(map[string]any{"aud": nil}), code: connect.CodeUnauthenticated, msg: "token has no aud claim", reason: authz.ReasonTokenBadClaims},
		{name: "secret issuer's key for the other issuer", auth: bearer(func(w *world) string { return w.mac.Mint(map[string]any{"kid": "ec-1"}, w.with(nil)) }), code: connect.CodeUnauthenticated, msg: "token algorithm does not match the key", reason: authz.ReasonTokenUntrusted},

		// Algorithms and keys.
		{name: "alg none", auth: bearer(func(w *world) string {
			return jwttest.B64([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + jwttest.B64(jwttest.MustJSON(w.with(nil))) + "."
		}), code: connect.CodeUnauthenticated, msg: "unsigned token (alg none) not accepted", reason: authz.ReasonTokenUntrusted},
		{name: "alg None", auth: bearer(func(w *world) string {
			return jwttest.B64([]byte(`{"alg":"None","typ":"at+jwt"}`)) + "." + jwttest.B64(jwttest.MustJSON(w.with(nil))) + "."
		}), code: connect.CodeUnauthenticated, msg: "token algorithm not supported", reason: authz.ReasonTokenUntrusted},
		{name: "HS256 with the RSA public key", auth: bearer(func(w *world) string {
			der, err := x509.MarshalPKIXPublicKey(w.rsa.Priv.Public())
			if err != nil {
				panic(err)
			}
			forger := jwttest.NewHMAC(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			return forger.Mint(map[string]any{"kid": "rsa-1"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token algorithm does not match the key", reason: authz.ReasonTokenUntrusted},
		{name: "ES256 key named for RS256", auth: bearer(func(w *world) string {
			return w.ec.Mint(map[string]any{"kid": "rsa-1"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token algorithm does not match the key", reason: authz.ReasonTokenUntrusted},
		{name: "PS256 not allowed", auth: bearer(func(w *world) string {
			return w.rsa.Mint(map[string]any{"alg": "PS256"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token algorithm not accepted from its issuer", reason: authz.ReasonTokenUntrusted},
		{name: "tampered payload", auth: bearer(func(w *world) string {
			good := strings.Split(w.ec.Mint(nil, w.claims(map[string]any{"LIC": 1})), ".")
			return good[0] + "." + jwttest.B64(jwttest.MustJSON(w.claims(map[string]any{"LIC": 7}))) + "." + good[2]
		}), code: connect.CodeUnauthenticated, msg: "token signature invalid", reason: authz.ReasonTokenBadSignature},
		{name: "tampered signature", auth: bearer(func(w *world) string {
			raw := []byte(w.ec.Mint(nil, w.with(nil)))
			i := len(raw) - 10
			raw[i] = map[bool]byte{true: 'B', false: 'A'}[raw[i] == 'A']
			return string(raw)
		}), code: connect.CodeUnauthenticated, msg: "token signature invalid", reason: authz.ReasonTokenBadSignature},
		{name: "ES256 signature in ASN.1", auth: bearer(func(w *world) string {
			parts := strings.Split(w.ec.Mint(nil, w.with(nil)), ".")
			sig := mustDecode(parts[2])
			return parts[0] + "." + parts[1] + "." + jwttest.B64(asn1Sig(sig[:32], sig[32:]))
		}), code: connect.CodeUnauthenticated, msg: "token signature invalid", reason: authz.ReasonTokenBadSignature},
		{name: "unknown kid", auth: bearer(func(w *world) string { return w.spare.Mint(nil, w.with(nil)) }), code: connect.CodeUnauthenticated, msg: "token signed by an unknown key", reason: authz.ReasonTokenUntrusted},
		{name: "no kid with several keys", auth: bearer(func(w *world) string {
			return w.ec.Mint(map[string]any{"kid": nil}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token has no kid; its issuer requires one", reason: authz.ReasonTokenUntrusted},
		{name: "no kid with one key for the algorithm", auth: bearer(func(w *world) string {
			return w.ed.Mint(map[string]any{"kid": nil}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token has no kid; its issuer requires one", reason: authz.ReasonTokenUntrusted},
		{name: "jku pointing elsewhere", auth: bearer(func(w *world) string {
			return w.attacker.Mint(map[string]any{"jku": w.evil.URL + "/jwks.json"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token signed by an unknown key", reason: authz.ReasonTokenUntrusted},
		{name: "jku with a known kid", auth: bearer(func(w *world) string {
			return w.attacker.Mint(map[string]any{"jku": w.evil.URL + "/jwks.json", "kid": "ec-1"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token signature invalid", reason: authz.ReasonTokenBadSignature},
		{name: "embedded jwk", auth: bearer(func(w *world) string {
			return w.attacker.Mint(map[string]any{"jwk": mustParse(jwttest.JWKS(w.attacker))["keys"].([]any)[0], "kid": "ec-1"}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token signature invalid", reason: authz.ReasonTokenBadSignature},

		// Headers.
		{name: "wrong typ", auth: bearer(func(w *world) string { return w.ec.Mint(map[string]any{"typ": "JWT"}, w.with(nil)) }), code: connect.CodeUnauthenticated, msg: "token type not accepted", reason: authz.ReasonTokenUntrusted},
		{name: "no typ", auth: bearer(func(w *world) string { return w.ec.Mint(map[string]any{"typ": nil}, w.with(nil)) }), code: connect.CodeUnauthenticated, msg: "token type not accepted", reason: authz.ReasonTokenUntrusted},
		{name: "typ as media type", auth: bearer(func(w *world) string {
			return w.ec.Mint(map[string]any{"typ": "application/AT+JWT"}, w.with(nil))
		}), msg: "billing"},
		{name: "crit", auth: bearer(func(w *world) string {
			return w.ec.Mint(map[string]any{"crit": []string{"exp"}, "exp": 1}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token header crit names unsupported extensions", reason: authz.ReasonTokenUntrusted},
		{name: "b64 false", auth: bearer(func(w *world) string {
			return w.ec.Mint(map[string]any{"crit": []string{"b64"}, "b64": false}, w.with(nil))
		}), code: connect.CodeUnauthenticated, msg: "token header crit names unsupported extensions", reason: authz.ReasonTokenUntrusted},
		{name: "duplicate header parameter", auth: bearer(func(w *world) string {
			return w.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt","alg":"HS256"}`, string(jwttest.MustJSON(w.with(nil))))
		}), code: connect.CodeUnauthenticated, msg: "token header has a duplicate parameter", reason: authz.ReasonTokenMalformed},
		{name: "duplicate claim", auth: bearer(func(w *world) string {
			c := string(jwttest.MustJSON(w.with(nil)))
			return w.ec.MintRaw(`{"alg":"ES256","kid":"ec-1","typ":"at+jwt"}`, c[:len(c)-1]+`,"perms":{"LIC":7}}`)
		}), code: connect.CodeUnauthenticated, msg: "token payload has a duplicate claim", reason: authz.ReasonTokenMalformed},
		{name: "JWE", auth: func(*world) string { return "Bearer eyJhbGciOiJkaXIifQ..aXY.Y3Q.dGFn" }, code: connect.CodeUnauthenticated, msg: "token is encrypted (JWE), not signed", reason: authz.ReasonTokenMalformed},
		{name: "oversized", auth: bearer(func(w *world) string {
			return w.ec.Mint(nil, w.with(map[string]any{"pad": strings.Repeat("x", 8<<10)}))
		}), code: connect.CodeUnauthenticated, msg: "token larger than 8192 bytes", reason: authz.ReasonTokenMalformed},
		{name: "padding in base64", auth: bearer(func(w *world) string {
			parts := strings.Split(w.ec.Mint(nil, w.with(nil)), ".")
			return parts[0] + "=." + parts[1] + "." + parts[2]
		}), code: connect.CodeUnauthenticated, msg: "token header is not base64url", reason: authz.ReasonTokenMalformed},

		// Claims of the wrong shape.
		{name: "tier not a string", auth: claims(map[string]any{"tier": 3}), code: connect.CodeUnauthenticated, msg: "token tier claim is not a string", reason: authz.ReasonTokenBadClaims},
		{name: "no subject", auth: claims(map[string]any{"sub": nil, "client_id": nil}), code: connect.CodeUnauthenticated, msg: "token has neither sub nor client_id claim", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask as string", auth: rawPerms(`{"LIC":"7"}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is a string, not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask as float", auth: rawPerms(`{"LIC":1.5}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask with fraction zero", auth: rawPerms(`{"LIC":2.0}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask with exponent", auth: rawPerms(`{"LIC":2e0}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask negative", auth: rawPerms(`{"LIC":-1}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is negative", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask nested", auth: rawPerms(`{"LIC":{"READ":1}}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask null", auth: rawPerms(`{"LIC":null}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is not an integer", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask 2^53", auth: rawPerms(`{"LIC":9007199254740992}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is above 2^53-1", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask 2^64", auth: rawPerms(`{"LIC":18446744073709551616}`), code: connect.CodeUnauthenticated, msg: "token perms claim: LIC is above 2^53-1", reason: authz.ReasonTokenBadClaims},
		{name: "perms mask 2^53-1", auth: rawPerms(`{"LIC":9007199254740991}`), msg: "s"},
		{name: "perms array", auth: rawPerms(`[3]`), code: connect.CodeUnauthenticated, msg: "token perms claim is not an object", reason: authz.ReasonTokenBadClaims},
		{name: "perms string", auth: rawPerms(`"LIC:3"`), code: connect.CodeUnauthenticated, msg: "token perms claim is not an object", reason: authz.ReasonTokenBadClaims},
		{name: "perms null", auth: rawPerms(`null`), code: connect.CodeUnauthenticated, msg: "token perms claim is not an object", reason: authz.ReasonTokenBadClaims},
		{name: "perms domain twice", auth: rawPerms(`{"LIC":2,"LIC":7}`), code: connect.CodeUnauthenticated, msg: "token perms claim names a domain twice", reason: authz.ReasonTokenBadClaims},
		{name: "perms domain not a name", auth: rawPerms(`{"lic":2}`), code: connect.CodeUnauthenticated, msg: "token perms claim has a member that is not a domain name", reason: authz.ReasonTokenBadClaims},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GetLicenceOrder"
			}
			var auth []string
			if tc.auth != nil {
				auth = []string{tc.auth(w)}
			}
			for mode, url := range w.servers {
				for _, p := range protocols {
					c := newClients(h2ctest.Client(t), url, p.opts...)
					got, err := c.call(t.Context(), method, auth)
					where := mode + "/" + p.name
					if tc.code == 0 {
						if err != nil || got != tc.msg {
							t.Fatalf("%s: got %q, %v; want %q", where, got, err, tc.msg)
						}
						continue
					}
					checkRefusal(t, where, err, tc.code, tc.msg, tc.reason, p.name == "grpc")
				}
			}
		})
	}
	if got := w.evil.Hits.Load(); got != 0 {
		t.Errorf("the attacker's key server was fetched %d times", got)
	}
}

// checkRefusal checks what a client sees of a refusal.
func checkRefusal(t *testing.T, where string, err error, code connect.Code, msg, reason string, grpc bool) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v, want %v %q", where, err, code, msg)
	}
	if ce.Code() != code || ce.Message() != msg {
		t.Fatalf("%s: got %v %q, want %v %q", where, ce.Code(), ce.Message(), code, msg)
	}
	var challenge string
	switch {
	case grpc:
		// gRPC clients read grpc-status; HTTP forbids the header as a trailer.
	case code == connect.CodeUnauthenticated && reason == authz.ReasonTokenMissing:
		challenge = `Bearer realm="portcullis"`
	case code == connect.CodeUnauthenticated:
		challenge = `Bearer realm="portcullis", error="invalid_token", error_description="` + msg + `"`
	case code == connect.CodePermissionDenied && reason == authz.ReasonPermissionMissing:
		challenge = `Bearer realm="portcullis", error="insufficient_scope", error_description="` + msg + `"`
	}
	if got := ce.Meta().Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("%s: WWW-Authenticate %q, want %q", where, got, challenge)
	}
	var info *errdetails.ErrorInfo
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if i, ok := v.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
	}
	if info == nil || info.GetReason() != reason || info.GetDomain() != authz.ErrorDomain {
		t.Fatalf("%s: ErrorInfo %v, want reason %s", where, info, reason)
	}
}

func TestAuthorizationHeaderTwice(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	raw := "Bearer " + w.ec.Mint(nil, w.with(nil))
	for mode, url := range w.servers {
		for _, p := range protocols {
			_, err := newClients(h2ctest.Client(t), url, p.opts...).call(t.Context(), "GetLicenceOrder", []string{raw, raw})
			checkRefusal(t, mode+"/"+p.name, err, connect.CodeUnauthenticated, "more than one Authorization header", authz.ReasonTokenMalformed, p.name == "grpc")
		}
	}
}

// Through the gate, a call is decided once; with the interceptor alone,
// once too.
func TestDecidedOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	auth := []string{"Bearer " + w.ec.Mint(nil, w.with(nil))}
	for mode, url := range w.servers {
		for _, p := range protocols {
			for _, method := range []string{"GetLicenceOrder", "WatchLicenceOrders", "ImportOrders", "SyncOrders"} {
				before := w.clock.reads.Load()
				if _, err := newClients(h2ctest.Client(t), url, p.opts...).call(t.Context(), method, auth); err != nil {
					t.Fatal(err)
				}
				if n := w.clock.reads.Load() - before; n != 1 {
					t.Errorf("%s/%s %s: verified %d times, want 1", mode, p.name, method, n)
				}
			}
		}
	}
}

// The gate refuses before the body is read: a body that cannot be decoded
// still gets 401, not 400.
func TestGateRejectsBeforeDecoding(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.servers["gate"]+"/example.licensing.v1.LicensingService/GetLicenceOrder", strings.NewReader("\xff\xff not proto"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	res, err := h2ctest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Bearer realm="portcullis"` {
		t.Fatalf("status %d, WWW-Authenticate %q; want 401 with a challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+w.ec.Mint(nil, w.claims(map[string]any{"ORD": 1})))

	// A method the catalog does not know is refused to everyone.
	_, err := w.authz.Authorize(t.Context(), "/example.licensing.v1.LicensingService/Unknown", h)
	var denied *authz.DeniedError
	if connect.CodeOf(err) != connect.CodePermissionDenied || !errors.As(err, &denied) || len(denied.Missing) != 0 ||
		err.(*connect.Error).Message() != "method /example.licensing.v1.LicensingService/Unknown declares no access" {
		t.Fatalf("unknown method: %v", err)
	}

	// Missing permissions are typed.
	_, err = w.authz.Authorize(t.Context(), "/example.orders.v1.OrdersService/SyncOrders", h)
	if !errors.As(err, &denied) || denied.Procedure != "/example.orders.v1.OrdersService/SyncOrders" || len(denied.Missing) != 2 ||
		denied.Missing[0].String() != "LIC.READ_ORDERS" || denied.Missing[1].String() != "ORD.WRITE" {
		t.Fatalf("denied: %v", err)
	}

	// Token refusals keep their kind.
	h.Set("Authorization", "Bearer "+w.ec.Mint(nil, w.with(map[string]any{"exp": jwttest.Epoch.Add(-time.Hour).Unix()})))
	_, err = w.authz.Authorize(t.Context(), "/example.orders.v1.OrdersService/GetOrder", h)
	if !errors.Is(err, token.ErrExpired) || errors.As(err, &denied) {
		t.Fatalf("expired: %v", err)
	}

	// A valid token puts the principal in the context.
	h.Set("Authorization", "Bearer "+w.ec.Mint(nil, w.with(nil)))
	ctx, err := w.authz.Authorize(t.Context(), "/example.orders.v1.OrdersService/GetOrder", h)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := token.FromContext(ctx)
	if !ok || p.ClientID != "billing" || p.Tier != "pro" || p.Masks["LIC"] != 7 || p.Masks["ORD"] != 3 || p.Claims["scope"] != "orders" || p.TokenID != "id-1" {
		t.Fatalf("principal %+v", p)
	}
}

// When the issuer's keys were never fetched, calls are Unavailable: the
// gateway is broken, the caller not denied.
func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	k := jwttest.NewEC("k")
	p := jwttest.NewIdP(t, k)
	p.Down.Store(true)
	v, err := token.NewVerifier(t.Context(), []token.Issuer{{
		Issuer: p.Issuer, Audiences: []string{audience}, JWKSURL: p.URL + "/jwks.json",
	}}, token.WithClock(token.ClockFunc(func() time.Time { return jwttest.Epoch })), token.WithRetryBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	a, err := authz.New(testCatalog(t), v)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, connect.WithRequestGate(a.Gate()), connect.WithInterceptors(a.Interceptor()))
	auth := []string{"Bearer " + k.Mint(nil, jwttest.ClaimsAt(p.Issuer, audience, jwttest.Epoch))}
	for _, pr := range protocols {
		_, err := newClients(h2ctest.Client(t), url, pr.opts...).call(t.Context(), "GetLicenceOrder", auth)
		checkRefusal(t, pr.name, err, connect.CodeUnavailable, "keys of issuer "+p.Issuer+" unavailable", authz.ReasonKeysUnavailable, pr.name == "grpc")
		if !errors.Is(err, token.ErrKeysUnavailable) && connect.IsWireError(err) {
			// Over the wire only the code, message and details travel.
			continue
		}
	}
	if v.Ready() == nil {
		t.Fatal("ready without keys")
	}
}

// Keys rotate under a running gateway: a token of a new key causes one
// fetch and passes; a flood of bogus key ids causes none within the
// cooldown; a token of the new key keeps passing when the issuer goes down.
func TestRotationThroughGateway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hits := w.idp.Hits.Load()
	w.idp.SetKeys(w.ec, w.rsa, w.ed, w.ec2, w.spare)
	auth := []string{"Bearer " + w.spare.Mint(nil, w.with(nil))}
	for _, p := range protocols {
		for mode, url := range w.servers {
			got, err := newClients(h2ctest.Client(t), url, p.opts...).call(t.Context(), "SyncOrders", auth)
			if err != nil || got != "billing" {
				t.Fatalf("%s/%s: %q, %v", mode, p.name, got, err)
			}
		}
	}
	if got := w.idp.Hits.Load() - hits; got != 1 {
		t.Fatalf("rotation: %d fetches, want 1", got)
	}
	for i := range 30 {
		bogus := []string{"Bearer " + w.spare.Mint(map[string]any{"kid": fmt.Sprintf("bogus-%d", i)}, w.with(nil))}
		p := protocols[i%len(protocols)]
		_, err := newClients(h2ctest.Client(t), w.servers["gate"], p.opts...).call(t.Context(), "GetLicenceOrder", bogus)
		checkRefusal(t, p.name, err, connect.CodeUnauthenticated, "token signed by an unknown key", authz.ReasonTokenUntrusted, p.name == "grpc")
	}
	if got := w.idp.Hits.Load() - hits; got != 1 {
		t.Fatalf("flood within the cooldown: %d fetches, want 1", got)
	}
	w.idp.Down.Store(true)
	for _, p := range protocols {
		// A token not seen before: verified with the keys fetched last.
		fresh := []string{"Bearer " + w.spare.Mint(nil, w.with(map[string]any{"jti": "fresh-" + p.name}))}
		if _, err := newClients(h2ctest.Client(t), w.servers["interceptor"], p.opts...).call(t.Context(), "GetLicenceOrder", fresh); err != nil {
			t.Fatalf("%s with the issuer down: %v", p.name, err)
		}
	}
}

// Without a verifier, public methods are open and the rest refused.
func TestWithoutVerifier(t *testing.T) {
	t.Parallel()
	a, err := authz.New(testCatalog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, connect.WithRequestGate(a.Gate()), connect.WithInterceptors(a.Interceptor()))
	for _, p := range protocols {
		c := newClients(h2ctest.Client(t), url, p.opts...)
		if got, err := c.call(t.Context(), "ListJurisdictions", nil); err != nil || got != "anonymous" {
			t.Fatalf("%s public: %q, %v", p.name, got, err)
		}
		_, err := c.call(t.Context(), "GetOrder", nil)
		checkRefusal(t, p.name, err, connect.CodeUnauthenticated, "missing bearer token", authz.ReasonTokenMissing, p.name == "grpc")
		_, err = c.call(t.Context(), "ListJurisdictions", []string{"Bearer a.b.c"})
		checkRefusal(t, p.name, err, connect.CodeUnauthenticated, "token issuer not trusted", authz.ReasonTokenUntrusted, p.name == "grpc")
	}
}
