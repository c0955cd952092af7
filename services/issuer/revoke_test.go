package issuer_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// claimsOf decodes the claims of a token, unverified.
func claimsOf(t testing.TB, raw string) tokenClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// feedOf reads the whole revocation feed of the issuer at issuerURL.
func feedOf(t testing.TB, issuerURL string) []revocation.Wire {
	t.Helper()
	res := request(t, "GET", issuerURL+issuer.RevocationFeedPath, nil, "")
	if res.status != http.StatusOK {
		t.Fatalf("feed: %d %s", res.status, res.body)
	}
	var p revocation.Page
	if err := json.Unmarshal(res.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Issuer != issuerURL {
		t.Fatalf("feed of %q, want %q", p.Issuer, issuerURL)
	}
	return p.Revocations
}

// revokeRequest calls the revocation endpoint with Basic credentials.
func revokeRequest(t testing.TB, issuerURL, id, secret, body string) response {
	t.Helper()
	return request(t, "POST", issuerURL+issuer.RevocationPath, form(id, secret), body)
}

func TestRevocationEndpointErrors(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := iss.Token(t, "reader", secret)
	revokeURL := iss.URL + issuer.RevocationPath
	for _, tt := range []struct {
		name        string
		method, url string
		header      http.Header
		body        string
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"GET", "GET", revokeURL, form("reader", secret), "", 405, "invalid_request", "accepts only POST"},
		{"no token", "POST", revokeURL, form("reader", secret), "token_type_hint=access_token", 400, "invalid_request", "missing token"},
		{"token in the URL", "POST", revokeURL + "?token=" + tok, form("reader", secret), "", 400, "invalid_request", "not the URL"},
		{"token twice", "POST", revokeURL, form("reader", secret), "token=a&token=b", 400, "invalid_request", "'token' is repeated"},
		{"JSON", "POST", revokeURL, http.Header{"Authorization": form("reader", secret)["Authorization"], "Content-Type": {"application/json"}}, `{"token":"x"}`, 400, "invalid_request", "Content-Type"},
		{"no authentication", "POST", revokeURL, form("", ""), "token=" + tok, 401, "invalid_client", "no client authentication"},
		{"wrong secret", "POST", revokeURL, form("reader", "wrong"), "token=" + tok, 401, "invalid_client", "client authentication failed"},
		{"unknown client, post", "POST", revokeURL, form("", ""), "client_id=nobody&client_secret=x&token=" + tok, 401, "invalid_client", "client authentication failed"},
	} {
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
			if res.header.Get("Content-Type") != "application/json" || res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", res.header)
			}
			if strings.Contains(string(res.body), secret) || strings.Contains(string(res.body), tok) {
				t.Error("the response echoes the secret or the token")
			}
		})
	}
	if len(feedOf(t, iss.URL)) != 0 {
		t.Fatal("a refused request revoked something")
	}
}

// A client revokes its own token (RFC 7009): 200 and an empty body, and
// the revocation is in the feed at once. Tokens that are not valid tokens
// of the issuer get 200 too, and revoke nothing; a client may not revoke
// another's token.
func TestRevocationEndpoint(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	other := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	otherSecret := iss.AddClient(t, issuer.Client{ID: "writer", Grants: []string{"ORD.WRITE"}})
	foreignSecret := other.AddClient(t, issuer.Client{ID: "reader"})
	tok := iss.Token(t, "reader", secret)
	writers := iss.Token(t, "writer", otherSecret)
	foreign := other.Token(t, "reader", foreignSecret)

	// Another client's token: refused, and not revoked.
	res := revokeRequest(t, iss.URL, "writer", otherSecret, "token="+url.QueryEscape(tok))
	if code, msg := res.oauthError(t); res.status != 400 || code != "unauthorized_client" || msg != "the token was issued to another client" {
		t.Fatalf("revoking another client's token: %d %s", res.status, res.body)
	}
	for _, body := range []string{
		"token=garbage",
		"token=" + foreign, // valid, but of another issuer
		"token=" + writers[:len(writers)-4] + "AAAA&token_type_hint=access_token", // bad signature
		"token=" + tok + "&token_type_hint=refresh_token&client_id=reader",        // revoked: the hint only hints
	} {
		res := revokeRequest(t, iss.URL, "reader", secret, body)
		if res.status != 200 || len(res.body) != 0 || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%.30s...: %d %q %v, want 200 with no body", body, res.status, res.body, res.header)
		}
	}
	jti := claimsOf(t, tok).ID
	exp := claimsOf(t, tok).Expiry
	got := feedOf(t, iss.URL)
	if len(got) != 1 || got[0].TokenID != jti || got[0].Expires != exp+int64(issuer.RetentionMargin/time.Second) {
		t.Fatalf("feed %+v, want the token %s only, until 5m after it expires", got, jti)
	}
	// Revoking it again changes nothing.
	if res := revokeRequest(t, iss.URL, "reader", secret, "token="+tok); res.status != 200 || len(feedOf(t, iss.URL)) != 1 {
		t.Fatalf("again: %d, feed %v", res.status, feedOf(t, iss.URL))
	}
	// An expired token (past the skew) has nothing left to revoke; the
	// revocation of the other stays 5 minutes past its expiry.
	clk.Advance(time.Hour + 2*time.Minute)
	if res := revokeRequest(t, iss.URL, "writer", otherSecret, "token="+writers); res.status != 200 || len(feedOf(t, iss.URL)) != 1 {
		t.Fatalf("expired: %d, feed %v", res.status, feedOf(t, iss.URL))
	}
	// The revocation is recorded beside the registry, for restarts.
	data, err := os.ReadFile(issuer.RevocationsPath(iss.RegistryPath))
	if err != nil || !strings.Contains(string(data), `"jti":"`+jti+`"`) || strings.Contains(string(data), tok) {
		t.Fatalf("revocation file %q, %v", data, err)
	}
}

// "portcullis clients revoke" ends the client's outstanding tokens: the
// feed carries a revocation of every token it was issued before, and a
// running issuer that polls nothing refuses it a token at once.
func TestRevokeClientRevokesItsTokens(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := iss.Token(t, "reader", secret)
	before := time.Now()
	// As the command does: no reload of the running issuer.
	if err := issuer.RevokeClient(iss.RegistryPath, "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Credentials("reader", secret).Token(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("token for the revoked client: %v, want invalid_client", err)
	}
	got := feedOf(t, iss.URL)
	if len(got) != 1 || got[0].ClientID != "reader" || got[0].Before < before.Unix() || got[0].Before > time.Now().Unix()+1 ||
		got[0].Before <= claimsOf(t, tok).IssuedAt {
		t.Fatalf("feed %+v, want a revocation of reader's tokens issued until now", got)
	}
	if want := got[0].Before + int64((issuer.DefaultMaxLifetime+issuer.RetentionMargin)/time.Second); got[0].Expires != want {
		t.Fatalf("the client revocation expires at %d, want %d: the maximum token lifetime after it", got[0].Expires, want)
	}
}

// A client revoked and added again at once gets a token that is not
// covered by its revocation, although iat counts whole seconds.
func TestReaddedClientTokenIsValid(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t))
	iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	iss.RevokeClient(t, "reader")
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	tok := iss.Token(t, "reader", secret)
	got := feedOf(t, iss.URL)
	if len(got) != 1 || claimsOf(t, tok).IssuedAt < got[0].Before {
		t.Fatalf("token issued at %d, revocation of tokens before %d: born revoked", claimsOf(t, tok).IssuedAt, got[0].Before)
	}
}

// "portcullis tokens revoke" appends to the revocation file; a running
// issuer serves what it appended within its poll interval, without a
// reload, and again after a restart.
func TestRevocationFileIsPolled(t *testing.T) {
	t.Parallel()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithRevocationPollInterval(10*time.Millisecond))
	if err := issuer.RevokeToken(iss.RegistryPath, "some-jti"); err != nil {
		t.Fatal(err)
	}
	if err := issuer.RevokeClientTokens(iss.RegistryPath, "gone", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(feedOf(t, iss.URL)) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("feed %+v, want both revocations", feedOf(t, iss.URL))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another issuer on the same registry: a restart.
	again, err := issuer.New(issuer.Config{IssuerURL: iss.URL, Audience: "a", KeyDir: iss.KeyDir, RegistryPath: iss.RegistryPath},
		newCatalog(t), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher), issuer.WithReloadInterval(0), issuer.WithRevocationPollInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	res := httptestGet(t, again.Handler(), issuer.RevocationFeedPath)
	if !strings.Contains(res, `"jti":"some-jti"`) || !strings.Contains(res, `"client_id":"gone"`) {
		t.Fatalf("feed after a restart: %s", res)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{issuer.RevokeToken(iss.RegistryPath, ""), `token id "" is not 1 to 256 bytes`},
		{issuer.RevokeClientTokens(iss.RegistryPath, "c", time.Now().Add(time.Hour)), "is in the future"},
		{issuer.RevokeClientTokens(iss.RegistryPath, "", time.Now()), `client id "" is not 1 to 256 bytes`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("error %v, want %q", tc.err, tc.want)
		}
	}
	// Tokens issued so long ago have all expired: nothing to record.
	if err := issuer.RevokeClientTokens(iss.RegistryPath, "old", time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(issuer.RevocationsPath(iss.RegistryPath)); strings.Contains(string(data), "old") {
		t.Fatalf("a revocation of long expired tokens was recorded: %s", data)
	}
}

// The revocation file keeps only what has not expired, and an issuer
// reads it again from the start once it was rewritten.
func TestRevocationFileCompaction(t *testing.T) {
	t.Parallel()
	clk := newClock()
	iss := issuertest.Start(t, newCatalog(t), issuer.WithClock(clk.Now))
	path := issuer.RevocationsPath(iss.RegistryPath)
	for i := range 1500 {
		if err := issuer.RevokeToken(iss.RegistryPath, "early-"+strings.Repeat("x", 20)+itoa(i), issuer.WithClock(clk.Now), issuer.WithMaxLifetime(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	clk.Advance(2 * time.Hour) // the early revocations have expired
	if err := issuer.RevokeToken(iss.RegistryPath, "late", issuer.WithClock(clk.Now)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= fi.Size() || after.Mode().Perm() != 0o600 {
		t.Fatalf("file of %d bytes (mode %v) after compaction, %d before", after.Size(), after.Mode(), fi.Size())
	}
	if err := iss.Server.Reload(); err != nil {
		t.Fatal(err)
	}
	got := feedOf(t, iss.URL)
	if len(got) != 1 || got[0].TokenID != "late" {
		t.Fatalf("feed of %d revocations, want the late one only", len(got))
	}
}
