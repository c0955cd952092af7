package issuer

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The error codes of the token endpoint (RFC 6749 §5.2). invalid_grant
// and unauthorized_client arise only with token exchange (a subject token
// that does not verify; a client not flagged exchange): client_credentials
// carries no grant to be invalid, and every registered client may use it.
// The revocation endpoint answers unauthorized_client to a client revoking
// another's token (RFC 7009 §2.1).
const (
	codeInvalidRequest       = "invalid_request"
	codeInvalidClient        = "invalid_client"
	codeUnauthorizedClient   = "unauthorized_client"
	codeUnsupportedGrantType = "unsupported_grant_type"
	codeInvalidScope         = "invalid_scope"
	// The token exchange grant's (RFC 8693 §2.2.2): invalid_grant for a
	// subject or actor token that does not verify.
	codeInvalidGrant         = "invalid_grant"
	codeInvalidTarget        = "invalid_target"
	codeUnsupportedTokenType = "unsupported_token_type"
	// codeTemporarilyUnavailable answers a caller over the failure limit
	// (with 429 and Retry-After) or an issuer with no usable key (503).
	// RFC 6749 defines it for the authorization endpoint; §5.2 has no code
	// for "too many attempts", and invalid_client would claim that the
	// credentials are wrong when they were not even checked.
	codeTemporarilyUnavailable = "temporarily_unavailable"
)

// oauthError is an error response of the token endpoint.
type oauthError struct {
	status      int
	code        string
	description string
	retryAfter  time.Duration // sets Retry-After when positive
	dpopNonce   string        // sets DPoP-Nonce when set (RFC 9449 §8)
}

func errRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: codeInvalidRequest, description: description}
}

func errClient(description string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: codeInvalidClient, description: description}
}

func errScope(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: codeInvalidScope, description: description}
}

// errAuthentication is the one answer to a wrong secret and to an unknown
// client alike.
var errAuthentication = errClient("client authentication failed")

// write sends e as JSON, {"error": ..., "error_description": ...}.
func (e *oauthError) write(w http.ResponseWriter, realm string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.status == http.StatusUnauthorized {
		// RFC 6749 §5.2 asks for the challenge when the client used Basic;
		// RFC 9110 §15.5.2 asks for one with every 401. Basic is the scheme
		// the client should use either way.
		h.Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	if e.dpopNonce != "" {
		h.Set("DPoP-Nonce", e.dpopNonce)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, errorText(e.description)})
	w.WriteHeader(e.status)
	w.Write(body)
}

// errorText keeps only the characters RFC 6749 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E), replacing others with
// '?', and bounds its length: descriptions may quote what a caller sent.
func errorText(s string) string {
	const maxLen = 200
	if len(s) > maxLen {
		s = s[:maxLen-3] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}

// quote returns a caller-supplied value for a description: bounded and
// between single quotes.
func quote(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return "'" + s + "'"
}
