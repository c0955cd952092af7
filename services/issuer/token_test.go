package issuer_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_ORDERS", "ORD.READ"}})
	basic := form("reader", secret)
	withHeader := func(h http.Header, k, v string) http.Header {
		h = h.Clone()
		h.Add(k, v)
		return h
	}
	tokenURL := iss.URL + issuer.TokenPath
	tests := []struct {
		name        string
		method      string
		url         string
		header      http.Header
		body        string
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		// invalid_request
		{"GET", "GET", tokenURL, basic, "", 405, "invalid_request", "only POST"},
		{"PUT", "PUT", tokenURL, basic, "grant_type=client_credentials", 405, "invalid_request", "only POST"},
		{"JSON body", "POST", tokenURL, withHeader(http.Header{"Authorization": basic["Authorization"]}, "Content-Type", "application/json"), `{"grant_type":"client_credentials"}`, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded"},
		{"no content type", "POST", tokenURL, http.Header{"Authorization": basic["Authorization"]}, "grant_type=client_credentials", 400, "invalid_request", "Content-Type"},
		{"parameters in the URL", "POST", tokenURL + "?client_secret=" + secret, basic, "grant_type=client_credentials", 400, "invalid_request", "not the URL"},
		{"malformed body", "POST", tokenURL, basic, "grant_type=client_credentials&scope=%zz", 400, "invalid_request", "not valid application/x-www-form-urlencoded"},
		{"body over 16 KiB", "POST", tokenURL, basic, "grant_type=client_credentials&pad=" + strings.Repeat("a", 16<<10), 413, "invalid_request", "larger than 16 KiB"},
		{"missing grant_type", "POST", tokenURL, basic, "scope=ORD.READ", 400, "invalid_request", "missing grant_type"},
		{"empty grant_type", "POST", tokenURL, basic, "grant_type=", 400, "invalid_request", "missing grant_type"},
		{"repeated grant_type", "POST", tokenURL, basic, "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request", "'grant_type' is repeated"},
		{"repeated scope", "POST", tokenURL, basic, "grant_type=client_credentials&scope=ORD.READ&scope=LIC.READ_ORDERS", 400, "invalid_request", "'scope' is repeated"},
		{"two authentication methods", "POST", tokenURL, basic, "grant_type=client_credentials&client_id=reader&client_secret=" + secret, 400, "invalid_request", "use one method"},
		{"client_id differs from Basic", "POST", tokenURL, basic, "grant_type=client_credentials&client_id=other", 400, "invalid_request", "differs"},
		{"client_secret without client_id", "POST", tokenURL, form("", ""), "grant_type=client_credentials&client_secret=" + secret, 400, "invalid_request", "without client_id"},
		{"Basic not base64", "POST", tokenURL, withHeader(form("", ""), "Authorization", "Basic !!!"), "grant_type=client_credentials", 400, "invalid_request", "not base64"},
		{"Basic without colon", "POST", tokenURL, withHeader(form("", ""), "Authorization", "Basic cmVhZGVy"), "grant_type=client_credentials", 400, "invalid_request", "no ':'"},
		{"Basic not form-urlencoded", "POST", tokenURL, form("reader%zz", secret), "grant_type=client_credentials", 400, "invalid_request", "form-urlencoded"},
		{"two Authorization headers", "POST", tokenURL, withHeader(basic, "Authorization", basic.Get("Authorization")), "grant_type=client_credentials", 400, "invalid_request", "more than one Authorization"},
		// unsupported_grant_type
		{"password grant", "POST", tokenURL, basic, "grant_type=password&username=a&password=b", 400, "unsupported_grant_type", "'password' is not supported"},
		{"authorization_code grant", "POST", tokenURL, basic, "grant_type=authorization_code&code=x", 400, "unsupported_grant_type", "use client_credentials"},
		// invalid_client
		{"no authentication", "POST", tokenURL, form("", ""), "grant_type=client_credentials", 401, "invalid_client", "no client authentication"},
		{"public client", "POST", tokenURL, form("", ""), "grant_type=client_credentials&client_id=reader", 401, "invalid_client", "public clients are not supported"},
		{"Bearer scheme", "POST", tokenURL, withHeader(form("", ""), "Authorization", "Bearer abc"), "grant_type=client_credentials", 401, "invalid_client", "'Bearer' is not supported"},
		{"unknown client, Basic", "POST", tokenURL, form("nobody", secret), "grant_type=client_credentials", 401, "invalid_client", "client authentication failed"},
		{"wrong secret, Basic", "POST", tokenURL, form("reader", "wrong"), "grant_type=client_credentials", 401, "invalid_client", "client authentication failed"},
		{"wrong secret, post", "POST", tokenURL, form("", ""), "grant_type=client_credentials&client_id=reader&client_secret=wrong", 401, "invalid_client", "client authentication failed"},
		{"empty secret, Basic", "POST", tokenURL, form("reader", ""), "grant_type=client_credentials", 401, "invalid_client", "client authentication failed"},
		// invalid_scope
		{"unknown permission", "POST", tokenURL, basic, "grant_type=client_credentials&scope=ORD.READ+LIC.NOPE", 400, "invalid_scope", "unknown permission LIC.NOPE"},
		{"permission not granted", "POST", tokenURL, basic, "grant_type=client_credentials&scope=LIC.WRITE_ORDERS+ORD.READ", 400, "invalid_scope", "permission LIC.WRITE_ORDERS not granted"},
		{"scope with two spaces", "POST", tokenURL, basic, "grant_type=client_credentials&scope=ORD.READ++LIC.READ_ORDERS", 400, "invalid_scope", "single spaces"},
		{"scope with a quote", "POST", tokenURL, basic, "grant_type=client_credentials&scope=" + url.QueryEscape(`ORD."READ`), 400, "invalid_scope", "malformed scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := request(t, tt.method, tt.url, tt.header, tt.body)
			if res.status != tt.wantStatus {
				t.Errorf("status %d, want %d (%s)", res.status, tt.wantStatus, res.body)
			}
			code, message := res.oauthError(t)
			if code != tt.wantCode || !strings.Contains(message, tt.wantMessage) {
				t.Errorf("error %q %q, want %q containing %q", code, message, tt.wantCode, tt.wantMessage)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"} {
				if got := res.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			challenge := res.header.Get("WWW-Authenticate")
			if want := tt.wantStatus == 401; want != strings.HasPrefix(challenge, `Basic realm="`+iss.URL+`"`) {
				t.Errorf("WWW-Authenticate %q with status %d", challenge, res.status)
			}
			if tt.wantStatus == 405 && res.header.Get("Allow") != "POST" {
				t.Errorf("Allow: %q, want POST", res.header.Get("Allow"))
			}
			if strings.Contains(string(res.body), secret) {
				t.Error("the response echoes the secret")
			}
		})
	}
}

func TestTokenEndpointAccepts(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	// A secret that needs form-urlencoding in Basic credentials (RFC 6749
	// §2.3.1), registered by hand.
	const id, secret = "odd.client_1", "p@ss:w+rd %/é"
	hash, err := fastHasher.Hash([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	writeRegistry(t, iss.RegistryPath, "clients:\n- id: "+id+"\n  secret_hash: "+hash+"\n  grants: [ORD.READ]\n")
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	basicHeader := form("", "")
	basicHeader.Set("Authorization", "Basic "+b64(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	tests := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"Basic, form-urlencoded", basicHeader, "grant_type=client_credentials"},
		{"Basic, lower-case scheme", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}, "Authorization": {"basic " + b64(url.QueryEscape(id)+":"+url.QueryEscape(secret))}}, "grant_type=client_credentials"},
		{"Basic with the same client_id in the body", basicHeader, "grant_type=client_credentials&client_id=" + id},
		{"post", form("", ""), "grant_type=client_credentials&client_id=" + id + "&client_secret=" + url.QueryEscape(secret)},
		{"empty scope is no scope", basicHeader, "grant_type=client_credentials&scope="},
		{"unknown parameters are ignored", basicHeader, "grant_type=client_credentials&resource=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := request(t, "POST", iss.URL+issuer.TokenPath, tt.header, tt.body)
			if res.status != 200 {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Pragma") != "no-cache" || res.header.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", res.header)
			}
		})
	}
}

// countingHasher wraps the fast hasher, recording the hashes it verifies
// against and the dummy hash the issuer makes.
type countingHasher struct {
	mu       sync.Mutex
	hashed   []string
	verified []string
}

func (c *countingHasher) hasher() issuer.Hasher {
	return hasherFuncs{
		hash: func(secret []byte) (string, error) {
			h, err := fastHasher.Hash(secret)
			c.mu.Lock()
			c.hashed = append(c.hashed, h)
			c.mu.Unlock()
			return h, err
		},
		verify: func(encoded string, secret []byte) (bool, error) {
			c.mu.Lock()
			c.verified = append(c.verified, encoded)
			c.mu.Unlock()
			return fastHasher.Verify(encoded, secret)
		},
	}
}

func (c *countingHasher) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.verified
	c.verified = nil
	return v
}

// phcParams returns the parameters part of an argon2id hash.
func phcParams(h string) string {
	parts := strings.Split(h, "$")
	if len(parts) != 6 {
		return "malformed " + h
	}
	return strings.Join(parts[:4], "$")
}

func TestUnknownClientAndWrongSecretTakeTheSamePath(t *testing.T) {
	t.Parallel()
	counter := &countingHasher{}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithHasher(counter.hasher()))
	if len(counter.hashed) != 1 {
		t.Fatalf("New hashed %d secrets, want 1 (the dummy)", len(counter.hashed))
	}
	dummy := counter.hashed[0]
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})

	for _, style := range []struct {
		name string
		req  func(id, secret string) response
	}{
		{"client_secret_basic", func(id, secret string) response {
			return request(t, "POST", iss.URL+issuer.TokenPath, form(id, secret), "grant_type=client_credentials")
		}},
		{"client_secret_post", func(id, secret string) response {
			return request(t, "POST", iss.URL+issuer.TokenPath, form("", ""), url.Values{
				"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode())
		}},
	} {
		unknown := style.req("no-such-client", secret)
		unknownVerified := counter.take()
		wrong := style.req("reader", secret+"x")
		wrongVerified := counter.take()

		if unknown.status != 401 || wrong.status != 401 || string(unknown.body) != string(wrong.body) {
			t.Errorf("%s: unknown client %d %s; wrong secret %d %s", style.name, unknown.status, unknown.body, wrong.status, wrong.body)
		}
		for _, h := range []string{"WWW-Authenticate", "Content-Type", "Cache-Control", "Pragma", "Content-Length"} {
			if unknown.header.Get(h) != wrong.header.Get(h) {
				t.Errorf("%s: %s differs: %q vs %q", style.name, h, unknown.header.Get(h), wrong.header.Get(h))
			}
		}
		// One verification each: the unknown client against the dummy hash,
		// made with the same parameters as the client's.
		if len(unknownVerified) != 1 || unknownVerified[0] != dummy {
			t.Errorf("%s: unknown client verified %v, want once against the dummy hash", style.name, unknownVerified)
		}
		if len(wrongVerified) != 1 || wrongVerified[0] == dummy {
			t.Errorf("%s: wrong secret verified %v, want once against the client's hash", style.name, wrongVerified)
		}
		if len(unknownVerified) == 1 && len(wrongVerified) == 1 && phcParams(unknownVerified[0]) != phcParams(wrongVerified[0]) {
			t.Errorf("%s: dummy hash %s and client hash %s differ in cost", style.name, phcParams(unknownVerified[0]), phcParams(wrongVerified[0]))
		}
	}

	// A verified secret is remembered: the next token costs no hash.
	iss.Token(t, "reader", secret)
	if v := counter.take(); len(v) != 1 {
		t.Errorf("first token verified %d times, want 1", len(v))
	}
	iss.Token(t, "reader", secret)
	if v := counter.take(); len(v) != 0 {
		t.Errorf("second token verified %d times, want 0 (cached)", len(v))
	}
	// Failures are not remembered.
	request(t, "POST", iss.URL+issuer.TokenPath, form("reader", "wrong"), "grant_type=client_credentials")
	request(t, "POST", iss.URL+issuer.TokenPath, form("reader", "wrong"), "grant_type=client_credentials")
	if v := counter.take(); len(v) != 2 {
		t.Errorf("two failures verified %d times, want 2", len(v))
	}
}

func TestVerificationCacheOff(t *testing.T) {
	t.Parallel()
	counter := &countingHasher{}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithHasher(counter.hasher()), issuer.WithVerificationCache(0))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	iss.Token(t, "reader", secret)
	iss.Token(t, "reader", secret)
	if v := counter.take(); len(v) != 2 {
		t.Errorf("two tokens verified %d times, want 2", len(v))
	}
}

func TestFailureLimit(t *testing.T) {
	t.Parallel()
	clk := newClock()
	counter := &countingHasher{}
	// The test plays several source addresses, as a trusted proxy would
	// report them.
	fromHeader := func(r *http.Request) (netip.Addr, bool) {
		a, err := netip.ParseAddr(r.Header.Get("X-Test-Addr"))
		return a, err == nil
	}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now), issuer.WithHasher(counter.hasher()),
		issuer.WithFailureLimit(2, time.Minute), issuer.WithClientAddr(fromHeader))
	secrets := map[string]string{}
	for _, id := range []string{"alice", "bob", "carol", "dave"} {
		secrets[id] = iss.AddClient(t, issuer.Client{ID: id})
	}
	attempt := func(addr, id, secret string) response {
		t.Helper()
		h := form(id, secret)
		h.Set("X-Test-Addr", addr)
		return request(t, "POST", iss.URL+issuer.TokenPath, h, "grant_type=client_credentials")
	}
	expect := func(step string, res response, status int) {
		t.Helper()
		if res.status != status {
			t.Fatalf("%s: status %d, want %d: %s", step, res.status, status, res.body)
		}
		if status == 429 {
			code, _ := res.oauthError(t)
			if code != "temporarily_unavailable" || res.header.Get("Retry-After") == "" {
				t.Fatalf("%s: error %q, Retry-After %q", step, code, res.header.Get("Retry-After"))
			}
		}
	}

	// Per client id: alice's secret guessed from two addresses.
	expect("alice wrong 1", attempt("192.0.2.1", "alice", "guess1"), 401)
	expect("alice wrong 2", attempt("192.0.2.2", "alice", "guess2"), 401)
	counter.take()
	res := attempt("192.0.2.3", "alice", secrets["alice"])
	expect("alice over the limit, even with her secret", res, 429)
	if got := res.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %q, want 60", got)
	}
	if v := counter.take(); len(v) != 0 {
		t.Errorf("a refused attempt verified %d hashes, want 0", len(v))
	}
	expect("bob from the same address", attempt("192.0.2.3", "bob", secrets["bob"]), 200)

	// Per address: one address tries many ids.
	expect("unknown 1", attempt("198.51.100.7", "x1", "s"), 401)
	expect("unknown 2", attempt("198.51.100.7", "x2", "s"), 401)
	expect("carol from the guessing address", attempt("198.51.100.7", "carol", secrets["carol"]), 429)
	expect("carol from elsewhere", attempt("198.51.100.8", "carol", secrets["carol"]), 200)
	// carol's verified secret is cached: knowing it proves enough.
	expect("carol from the guessing address, cached", attempt("198.51.100.7", "carol", secrets["carol"]), 200)

	// IPv6 addresses are limited per /64.
	expect("v6 1", attempt("2001:db8::1", "y1", "s"), 401)
	expect("v6 2", attempt("2001:db8::2", "y2", "s"), 401)
	expect("v6 same /64", attempt("2001:db8::ffff", "dave", secrets["dave"]), 429)
	expect("v6 other /64", attempt("2001:db8:0:1::1", "dave", secrets["dave"]), 200)

	// One failure is forgiven per interval.
	clk.Advance(time.Minute)
	expect("alice after a minute", attempt("192.0.2.3", "alice", secrets["alice"]), 200)
	expect("the address after a minute", attempt("198.51.100.7", "y3", "s"), 401)
	expect("and then no more", attempt("198.51.100.7", "y4", "s"), 429)
}

func TestTokenRequestCanceledWhileWaitingForAHash(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	blocking := hasherFuncs{
		hash: fastHasher.Hash,
		verify: func(encoded string, secret []byte) (bool, error) {
			entered <- struct{}{}
			<-release
			return fastHasher.Verify(encoded, secret)
		},
	}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithHasher(blocking), issuer.WithMaxConcurrentVerifications(1), issuer.WithVerificationCache(0))
	secret := iss.AddClient(t, issuer.Client{ID: "reader"})
	first := make(chan error, 1)
	go func() {
		_, err := iss.Credentials("reader", secret).Token(context.Background())
		first <- err
	}()
	<-entered // the only slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := iss.Credentials("reader", secret).Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second request: %v, want the deadline", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first request: %v", err)
	}
}
