package issuer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"

	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
)

func newCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// clock is a settable clock for the issuer and the verifier.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// h2cClient speaks only HTTP/2 without TLS.
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// tokenClaims are every claim an issued token may hold; decoding rejects
// any other.
type tokenClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	Expiry    int64             `json:"exp"`
	IssuedAt  int64             `json:"iat"`
	NotBefore int64             `json:"nbf"`
	ID        string            `json:"jti"`
	ClientID  string            `json:"client_id"`
	Scope     string            `json:"scope"`
	Perms     map[string]uint64 `json:"perms"`
	Tier      string            `json:"tier"`
}

// fetchJWKS gets the issuer's JWKS over HTTP.
func fetchJWKS(t testing.TB, issuerURL string) jwk.Set {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), issuerURL+issuer.JWKSPath)
	if err != nil {
		t.Fatalf("fetch JWKS: %v", err)
	}
	return set
}

func kids(set jwk.Set) []string {
	var out []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		out = append(out, k.KeyID())
	}
	return out
}

// verifyToken verifies token at now against the issuer's JWKS, fetched over
// HTTP with jwx, and returns its claims and the kid that signed it.
func verifyToken(t testing.TB, issuerURL, token string, now time.Time) (tokenClaims, string) {
	t.Helper()
	c, kid, err := checkToken(t, issuerURL, token, now)
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return c, kid
}

func checkToken(t testing.TB, issuerURL, token string, now time.Time) (tokenClaims, string, error) {
	t.Helper()
	set := fetchJWKS(t, issuerURL)
	var c tokenClaims
	if _, err := jwt.Parse([]byte(token),
		jwt.WithKeySet(set),
		jwt.WithValidate(true),
		jwt.WithIssuer(issuerURL),
		jwt.WithAudience(issuertest.Audience),
		jwt.WithRequiredClaim("jti"),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
	); err != nil {
		return c, "", err
	}
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		return c, "", err
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Type() != "at+jwt" {
		t.Errorf("typ = %q, want at+jwt", h.Type())
	}
	kid := h.KeyID()
	if _, ok := set.LookupKeyID(kid); !ok {
		t.Errorf("kid %q is not in the JWKS %v", kid, kids(set))
	}
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set))
	if err != nil {
		return c, "", err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("claims %s: %v", payload, err)
	}
	return c, kid, nil
}

// response is what the token endpoint answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) oauthError(t testing.TB) (code, description string) {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	for k := range e {
		if k != "error" && k != "error_description" {
			t.Errorf("error body has member %q", k)
		}
	}
	return e["error"], e["error_description"]
}

// request sends a raw request to the issuer.
func request(t testing.TB, method, url string, header http.Header, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// form is the header of a form-encoded request, with Basic credentials
// when id is not empty.
func form(id, secret string) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if id != "" {
		r, _ := http.NewRequest("POST", "/", nil)
		r.SetBasicAuth(id, secret)
		h.Set("Authorization", r.Header.Get("Authorization"))
	}
	return h
}

// fastHasher is the hasher of the tests' issuers.
var fastHasher = issuertest.Hasher()

// hasherFuncs is a Hasher made of functions.
type hasherFuncs struct {
	hash   func(secret []byte) (string, error)
	verify func(encoded string, secret []byte) (bool, error)
}

func (h hasherFuncs) Hash(secret []byte) (string, error) { return h.hash(secret) }
func (h hasherFuncs) Verify(encoded string, secret []byte) (bool, error) {
	return h.verify(encoded, secret)
}

// listen returns a listener on 127.0.0.1 and its http URL.
func listen(t testing.TB) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, "http://" + l.Addr().String()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// writeRegistry writes a registry file by hand.
func writeRegistry(t testing.TB, path, contents string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// httptestGet serves a GET of path by h and returns the body.
func httptestGet(t testing.TB, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Body.String()
}
