package gateway_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/portcullis/portcullis/gateway/authz"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/dpoptest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/redistest"
	"github.com/portcullis/portcullis/services/issuer"
)

const listRequirementsPath = "/example.licensing.v1.LicensingService/ListRequirements"

// dpopToken gets a DPoP-bound token for a client from the issuer: a
// client credentials request with a proof of key k (RFC 9449 §5).
func dpopToken(t testing.TB, s *stack, id, secret string, k *dpoptest.Key) string {
	t.Helper()
	tokenURL := s.issuer.Server.TokenURL()
	res := postToken(t, tokenURL, id, secret, k.Proof(t, "POST", tokenURL, ""))
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("token request: %d, %v", res.StatusCode, err)
	}
	if body.TokenType != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", body.TokenType)
	}
	if jkt := claimsOf(t, body.AccessToken).Cnf.JKT; jkt != k.Thumbprint {
		t.Fatalf("cnf.jkt %q, want the proof key's %q", jkt, k.Thumbprint)
	}
	return body.AccessToken
}

func postToken(t testing.TB, tokenURL, id, secret, proof string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type tokenClaims struct {
	Cnf struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

func claimsOf(t testing.TB, tok string) tokenClaims {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c tokenClaims
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("token claims unreadable")
	}
	return c
}

func dpopListRequest() *connect.Request[licensingv1.ListRequirementsRequest] {
	return connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
}

func dpopClient(s *stack, opts ...connect.ClientOption) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(&http.Client{Transport: h2ctest.Transport()}, s.url, opts...)
}

// TestDPoPThroughGateway: a client with its own jwx signer gets a
// DPoP-bound token from the issuer and calls the gateway in each
// protocol, a fresh proof per call; the same token sent as Bearer is
// refused.
func TestDPoPThroughGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, "")
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	k := dpoptest.NewKey(t, "ES256")
	tok := dpopToken(t, s, "reader", secret, k)
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			client := dpopClient(s, opts...)
			for range 2 {
				req := dpopListRequest()
				req.Header().Set("Authorization", "DPoP "+tok)
				req.Header().Set("DPoP", k.Proof(t, "POST", s.url+listRequirementsPath, tok))
				res, err := client.ListRequirements(context.Background(), req)
				if err != nil {
					t.Fatalf("DPoP call: %v", err)
				}
				if len(res.Msg.GetRequirements()) == 0 {
					t.Fatal("no requirements came back")
				}
			}
			req := dpopListRequest()
			req.Header().Set("Authorization", "Bearer "+tok)
			req.Header().Set("DPoP", k.Proof(t, "POST", s.url+listRequirementsPath, tok))
			_, err := client.ListRequirements(context.Background(), req)
			checkRefusal(t, name, err, connect.CodeUnauthenticated, authz.ReasonTokenUnbound, `error="invalid_token"`)
		})
	}
}

// checkRefusal checks the code, the ErrorInfo reason and, outside gRPC
// (whose trailers cannot carry it), the DPoP challenge.
func checkRefusal(t *testing.T, protocol string, err error, code connect.Code, reason, challenge string) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("err = %v, want %v", err, code)
	}
	if info := errorInfo(err); info == nil || info.Reason != reason {
		t.Fatalf("ErrorInfo %v, want reason %s", info, reason)
	}
	if protocol == "grpc" || challenge == "" {
		return
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatal("not a connect error")
	}
	got := strings.Join(ce.Meta().Values("WWW-Authenticate"), " | ")
	if !strings.HasPrefix(got, "DPoP ") || !strings.Contains(got, `algs="ES256 ES384 EdDSA RS256 PS256"`) || !strings.Contains(got, challenge) {
		t.Fatalf("WWW-Authenticate %q, want a DPoP challenge with %s", got, challenge)
	}
}

// TestDPoPRefusals: each proof the gateway must refuse, in each protocol.
func TestDPoPRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t, "guard: {enabled: false}\n") // so many refusals from one address
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	k := dpoptest.NewKey(t, "ES256")
	other := dpoptest.NewKey(t, "ES256")
	tok := dpopToken(t, s, "reader", secret, k)
	target := s.url + listRequirementsPath
	pub := map[string]any{}
	b, _ := json.Marshal(k.PublicJWK)
	_ = json.Unmarshal(b, &pub)
	hs256 := func(in []byte) []byte {
		m := hmac.New(sha256.New, []byte("0123456789abcdef0123456789abcdef"))
		m.Write(in)
		return m.Sum(nil)
	}
	proof := func(edits ...dpoptest.Edit) []string { return []string{k.Proof(t, "POST", target, tok, edits...)} }
	cases := []struct {
		name   string
		auth   string
		proofs func(t *testing.T) []string
		reason string
		want   string // in the challenge
	}{
		{"wrong htm", "DPoP " + tok, func(t *testing.T) []string { return []string{k.Proof(t, "GET", target, tok)} }, authz.ReasonDPoPProofInvalid, "htm does not match"},
		{"wrong htu", "DPoP " + tok, func(t *testing.T) []string {
			return []string{k.Proof(t, "POST", s.url+"/example.licensing.v1.LicensingService/GetLicenceOrder", tok)}
		}, authz.ReasonDPoPProofInvalid, "htu does not match"},
		{"old iat", "DPoP " + tok, func(*testing.T) []string { return proof(dpoptest.At(time.Now().Add(-5 * time.Minute))) }, authz.ReasonDPoPProofInvalid, "too old"},
		{"future iat", "DPoP " + tok, func(*testing.T) []string { return proof(dpoptest.At(time.Now().Add(time.Minute))) }, authz.ReasonDPoPProofInvalid, "in the future"},
		{"wrong ath", "DPoP " + tok, func(t *testing.T) []string { return []string{k.Proof(t, "POST", target, "another.access.token")} }, authz.ReasonDPoPProofInvalid, "ath does not match"},
		{"thumbprint mismatch", "DPoP " + tok, func(t *testing.T) []string { return []string{other.Proof(t, "POST", target, tok)} }, authz.ReasonDPoPProofInvalid, "not the key the access token is bound to"},
		{"alg none", "DPoP " + tok, func(t *testing.T) []string {
			return []string{dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": pub}, dpoptest.Claims("POST", target, tok), nil)}
		}, authz.ReasonDPoPProofInvalid, "alg is not an accepted"},
		{"HMAC", "DPoP " + tok, func(t *testing.T) []string {
			return []string{dpoptest.Raw(t, map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": pub}, dpoptest.Claims("POST", target, tok), hs256)}
		}, authz.ReasonDPoPProofInvalid, "alg is not an accepted"},
		{"private key", "DPoP " + tok, func(*testing.T) []string { return proof(dpoptest.Header(jws.JWKKey, k.PrivateJWK)) }, authz.ReasonDPoPProofInvalid, "private key material"},
		{"missing proof", "DPoP " + tok, func(*testing.T) []string { return nil }, authz.ReasonDPoPProofInvalid, "missing DPoP proof"},
		{"two proofs", "DPoP " + tok, func(t *testing.T) []string { return append(proof(), proof()...) }, authz.ReasonDPoPProofInvalid, "more than one DPoP header"},
		{"proof without a token", "", func(*testing.T) []string { return proof() }, authz.ReasonTokenMissing, ""},
		{"token as Bearer", "Bearer " + tok, func(*testing.T) []string { return proof() }, authz.ReasonTokenUnbound, `error="invalid_token"`},
	}
	for name, opts := range protocols {
		client := dpopClient(s, opts...)
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				req := dpopListRequest()
				if c.auth != "" {
					req.Header().Set("Authorization", c.auth)
				}
				for _, p := range c.proofs(t) {
					req.Header().Add("DPoP", p)
				}
				_, err := client.ListRequirements(context.Background(), req)
				challenge := c.want
				if c.reason == authz.ReasonDPoPProofInvalid {
					challenge = `error="invalid_dpop_proof", error_description="`
					if !strings.Contains(err.Error(), c.want) {
						t.Fatalf("err = %v, want it to say %q", err, c.want)
					}
				}
				if c.name == "proof without a token" {
					checkMissing(t, name, err)
					return
				}
				checkRefusal(t, name, err, connect.CodeUnauthenticated, c.reason, challenge)
			})
		}
	}
}

// checkMissing checks the refusal of a call with no token: both schemes
// offered.
func checkMissing(t *testing.T, protocol string, err error) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("err = %v, want Unauthenticated", err)
	}
	if info := errorInfo(err); info == nil || info.Reason != authz.ReasonTokenMissing {
		t.Fatalf("ErrorInfo %v, want TOKEN_MISSING", info)
	}
	if protocol == "grpc" {
		return
	}
	var ce *connect.Error
	errors.As(err, &ce)
	got := ce.Meta().Values("WWW-Authenticate")
	if len(got) != 2 || !strings.HasPrefix(got[0], "Bearer ") || !strings.HasPrefix(got[1], "DPoP ") {
		t.Fatalf("WWW-Authenticate %q, want a Bearer and a DPoP challenge", got)
	}
}

// TestDPoPReplay: a proof accepted once is refused the second time, by
// the same gateway (memory) and by another replica sharing Redis.
func TestDPoPReplay(t *testing.T) {
	t.Parallel()
	_, prefix := redistest.Shared(t)
	s := newStack(t, fmt.Sprintf("dpop: {replay: {store: redis, prefix: %q}}\nrate_limit: {redis: {timeout: 500ms}}\n", prefix))
	replica := startGateway(t, s.issuer, s.yaml)
	memory := newStack(t, "")
	for name, pair := range map[string][2]*stack{"memory": {memory, memory}, "redis across replicas": {s, replica}} {
		t.Run(name, func(t *testing.T) {
			first, second := pair[0], pair[1]
			secret := first.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
			k := dpoptest.NewKey(t, "ES256")
			tok := dpopToken(t, first, "reader", secret, k)
			proof := k.Proof(t, "POST", first.url+listRequirementsPath, tok)
			call := func(st *stack) error {
				req := dpopListRequest()
				req.Header().Set("Authorization", "DPoP "+tok)
				req.Header().Set("DPoP", proof)
				// Replicas behind one name: the replica is called
				// with the first one's host, which the proof names.
				hc := &http.Client{Transport: hostOf{host: strings.TrimPrefix(first.url, "http://"), base: h2ctest.Transport()}}
				_, err := licensingv1connect.NewLicensingServiceClient(hc, st.url).ListRequirements(context.Background(), req)
				return err
			}
			if err := call(first); err != nil {
				t.Fatalf("first use: %v", err)
			}
			err := call(second)
			checkRefusal(t, "connect", err, connect.CodeUnauthenticated, authz.ReasonDPoPProofInvalid, "jti replayed")
		})
	}
}

// TestDPoPNonce: with nonces required, a proof without one gets
// use_dpop_nonce and a DPoP-Nonce header; the proof carrying it passes.
func TestDPoPNonce(t *testing.T) {
	t.Parallel()
	s := newStack(t, "dpop: {nonce: {required: true}}\n")
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	k := dpoptest.NewKey(t, "ES256")
	tok := dpopToken(t, s, "reader", secret, k)
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			client := dpopClient(s, opts...)
			req := dpopListRequest()
			req.Header().Set("Authorization", "DPoP "+tok)
			req.Header().Set("DPoP", k.Proof(t, "POST", s.url+listRequirementsPath, tok))
			_, err := client.ListRequirements(context.Background(), req)
			checkRefusal(t, name, err, connect.CodeUnauthenticated, authz.ReasonDPoPNonceRequired, `error="use_dpop_nonce"`)
			var ce *connect.Error
			errors.As(err, &ce)
			nonce := ce.Meta().Get("DPoP-Nonce")
			if nonce == "" || errorInfo(err).Metadata["nonce"] != nonce {
				t.Fatalf("DPoP-Nonce %q, ErrorInfo %v: want the nonce in both", nonce, errorInfo(err))
			}
			req = dpopListRequest()
			req.Header().Set("Authorization", "DPoP "+tok)
			req.Header().Set("DPoP", k.Proof(t, "POST", s.url+listRequirementsPath, tok, dpoptest.Claim("nonce", nonce)))
			if _, err := client.ListRequirements(context.Background(), req); err != nil {
				t.Fatalf("with the nonce: %v", err)
			}
		})
	}
}

// TestDPoPREST: a REST call's proof names its REST URL, not the RPC's.
func TestDPoPREST(t *testing.T) {
	t.Parallel()
	s := newStack(t, "")
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	k := dpoptest.NewKey(t, "ES256")
	tok := dpopToken(t, s, "reader", secret, k)
	get := func(htu string) *http.Response {
		req, _ := http.NewRequest("GET", s.url+"/v1/requirements?jurisdiction=US-CA&business_kind=restaurant", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", k.Proof(t, "GET", htu, tok))
		res, err := (&http.Client{Transport: h2ctest.Transport()}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	if res := get(s.url + "/v1/requirements"); res.StatusCode != http.StatusOK {
		t.Fatalf("REST call: %d", res.StatusCode)
	}
	res := get(s.url + listRequirementsPath)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), "htu does not match") {
		t.Fatalf("proof naming the RPC URL: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

// hostOf sends every request with the Host (:authority) host.
type hostOf struct {
	host string
	base http.RoundTripper
}

func (h hostOf) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return h.base.RoundTrip(r)
}

// BenchmarkDPoPCall is a unary call through the gateway (h2c, Connect
// protocol, to the licensing backend) with a DPoP-bound token and a fresh
// proof, against the same call with a Bearer token. Proofs are made
// before the timer starts.
func BenchmarkDPoPCall(b *testing.B) {
	s := newStack(b, "guard: {enabled: false}\n")
	secret := s.issuer.AddClient(b, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	client := dpopClient(s)
	ctx := context.Background()
	b.Run("bearer", func(b *testing.B) {
		tok := s.issuer.Token(b, "reader", secret)
		b.ReportAllocs()
		for b.Loop() {
			req := dpopListRequest()
			req.Header().Set("Authorization", "Bearer "+tok)
			if _, err := client.ListRequirements(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dpop", func(b *testing.B) {
		k := dpoptest.NewKey(b, "ES256")
		tok := dpopToken(b, s, "reader", secret, k)
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = k.Proof(b, "POST", s.url+listRequirementsPath, tok)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			req := dpopListRequest()
			req.Header().Set("Authorization", "DPoP "+tok)
			req.Header().Set("DPoP", proofs[i])
			if _, err := client.ListRequirements(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDPoPCallPaired makes a Bearer call and a DPoP call in turns,
// in one loop, so that both see the same load, and reports each one's
// time and their ratio.
func BenchmarkDPoPCallPaired(b *testing.B) {
	s := newStack(b, "guard: {enabled: false}\n")
	secret := s.issuer.AddClient(b, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	client := dpopClient(s)
	ctx := context.Background()
	bearerTok := s.issuer.Token(b, "reader", secret)
	k := dpoptest.NewKey(b, "ES256")
	tok := dpopToken(b, s, "reader", secret, k)
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.Proof(b, "POST", s.url+listRequirementsPath, tok)
	}
	var bearerTime, dpopTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		req := dpopListRequest()
		req.Header().Set("Authorization", "Bearer "+bearerTok)
		if _, err := client.ListRequirements(ctx, req); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		req = dpopListRequest()
		req.Header().Set("Authorization", "DPoP "+tok)
		req.Header().Set("DPoP", proofs[i])
		if _, err := client.ListRequirements(ctx, req); err != nil {
			b.Fatal(err)
		}
		bearerTime += mid.Sub(start)
		dpopTime += time.Since(mid)
	}
	b.ReportMetric(float64(bearerTime.Nanoseconds())/float64(b.N), "bearer-ns/op")
	b.ReportMetric(float64(dpopTime.Nanoseconds())/float64(b.N), "dpop-ns/op")
	b.ReportMetric(float64(dpopTime)/float64(bearerTime), "dpop/bearer")
}
