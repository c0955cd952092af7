package telemetry_test

import (
	"regexp"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/telemetry"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
)

var tokenHashPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkTokenHash checks that an access line has a token_hash if and only
// if the call sent a token, and that it looks like one.
func checkTokenHash(t *testing.T, line map[string]any, sent bool) {
	t.Helper()
	h, ok := line["token_hash"].(string)
	switch {
	case !sent && ok:
		t.Errorf("access line has token_hash %q for a call without a token: %v", h, line)
	case sent && !tokenHashPattern.MatchString(h):
		t.Errorf("access line has token_hash %q, want 16 hex digits: %v", h, line)
	}
	if _, ok := line["token_prefix"]; ok {
		t.Errorf("access line shows the start of the token: %v", line)
	}
}

// tokenHashes makes a call with each token, in turn, checks the token_id
// of each call's access line (the jti of the token's principal) and
// returns its token_hash.
func tokenHashes(t *testing.T, s *stack, tokens ...string) []string {
	t.Helper()
	before := len(accessLines(t, s.logs))
	for i, tok := range tokens {
		_ = listRequirements(tok)(t.Context(), s.client(protocols[i%len(protocols)].opts...))
	}
	lines := accessLines(t, s.logs)[before:]
	if len(lines) != len(tokens) {
		t.Fatalf("%d access lines for %d calls", len(lines), len(tokens))
	}
	hashes := make([]string, len(lines))
	for i, line := range lines {
		checkTokenHash(t, line, true)
		hashes[i], _ = line["token_hash"].(string)
		var jti string
		if p := principals[tokens[i]]; p != nil {
			jti = p.TokenID
		}
		checkField(t, line, "token_id", jti)
	}
	return hashes
}

// TestTokenHash checks that access lines tell tokens apart by a keyed hash:
// the same for the same token, whatever the call's protocol or outcome,
// different for different tokens and for different keys.
func TestTokenHash(t *testing.T) {
	t.Parallel()
	key := []byte("a key the fleet shares, 32 bytes")
	s := newStack(t, stackConfig{telOpts: []telemetry.Option{telemetry.WithTokenHashKey(key)}})
	h := tokenHashes(t, s, tokenAllowed, tokenReader, tokenAllowed, tokenForged, tokenLimited, tokenAllowed)
	if h[0] != h[2] || h[0] != h[5] {
		t.Errorf("one token, hashes %q, %q and %q: want them equal", h[0], h[2], h[5])
	}
	seen := map[string]string{}
	for i, tok := range []string{tokenAllowed, tokenReader, tokenForged, tokenLimited} {
		hash := h[[]int{0, 1, 3, 4}[i]]
		if other, ok := seen[hash]; ok && other != tok {
			t.Errorf("tokens %q and %q share the hash %q", other, tok, hash)
		}
		seen[hash] = tok
	}

	// Another replica with the same key writes the same hash; one with its
	// own random key, another.
	replica := newStack(t, stackConfig{telOpts: []telemetry.Option{telemetry.WithTokenHashKey(key)}})
	if got := tokenHashes(t, replica, tokenAllowed)[0]; got != h[0] {
		t.Errorf("replica with the same key: hash %q, want %q", got, h[0])
	}
	alone := newStack(t, stackConfig{})
	if got := tokenHashes(t, alone, tokenAllowed)[0]; got == h[0] {
		t.Errorf("gateway with its own key: hash %q, the same as with the fleet's", got)
	}

	for _, logs := range []string{s.logs.String(), replica.logs.String(), alone.logs.String()} {
		if strings.Contains(logs, "eyJ") {
			t.Errorf("logs show the start of a token: %s", logs)
		}
	}
}

// TestTokenHashWithoutToken checks that a call with a header that holds no
// bearer token logs no token_hash.
func TestTokenHashWithoutToken(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackConfig{})
	for _, auth := range []string{"", "Bearer ", "Basic dXNlcjpwYXNz"} {
		req := connect.NewRequest(&licensingv1.ListRequirementsRequest{})
		if auth != "" {
			req.Header().Set("Authorization", auth)
		}
		_, _ = s.client().ListRequirements(t.Context(), req)
	}
	for _, line := range accessLines(t, s.logs) {
		checkTokenHash(t, line, false)
	}
}
