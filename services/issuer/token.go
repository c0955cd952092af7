package issuer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	grantClientCredentials = "client_credentials"
	maxBodySize            = 16 << 10
	maxScopeNames          = 256
)

// tokenRequest is a parsed token request (RFC 6749 §4.4.2).
type tokenRequest struct {
	credentials
	scope []string // nil when the client asked for no scope
}

// tokenResponse is a successful response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	// IssuedTokenType answers a token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// serveToken is the token endpoint: the client credentials grant of RFC
// 6749 §4.4, with client_secret_basic and client_secret_post client
// authentication (§2.3.1).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(w, r)
	if err != nil {
		err.write(w, s.issuer)
		return
	}
	body, _ := json.Marshal(resp)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.Write(body)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) (*tokenResponse, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: codeInvalidRequest, description: "the token endpoint accepts only POST"}
	}
	form, oerr := readForm(w, r)
	if oerr != nil {
		return nil, oerr
	}
	if form.Get("grant_type") == grantTokenExchange && s.exchange != nil {
		return s.exchangeToken(r, form)
	}
	req, oerr := s.parseTokenRequest(r, form)
	if oerr != nil {
		return nil, oerr
	}
	// A client revoked ("portcullis clients revoke") gets no token from
	// then on, whatever the poll intervals: reading its revocation reloads
	// the registry it was removed from. A token minted later would not be
	// covered by the revocation.
	s.ingestRevocations()
	c, oerr := s.authenticateWith(r, req.credentials)
	if oerr != nil {
		return nil, oerr
	}
	cnf, oerr := s.certificateBinding(r, c)
	if oerr != nil {
		return nil, oerr
	}
	jkt, oerr := s.dpopProof(r)
	if oerr != nil {
		return nil, oerr
	}
	if wait := s.revokedUntil(c.id, s.cfg.now()); wait > 0 {
		// The client was revoked, and added again, within this second: a
		// token minted now would be covered by the revocation (iat has
		// whole seconds). It is minted in the next second instead.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: "request canceled"}
		}
	}
	masks, scope, oerr := s.grant(c, req.scope)
	if oerr != nil {
		return nil, oerr
	}
	v, err := s.view()
	if err != nil || v.active == nil {
		s.logger().Error("issuer: no active signing key", "error", err)
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: "no signing key is active"}
	}
	lifetime := c.lifetime
	if lifetime == 0 {
		lifetime = s.lifetime
	}
	now := s.cfg.now()
	if jkt != "" {
		cnf = cnf.withKey(jkt)
	}
	token, err := s.mint(v.active, c, masks, scope, cnf, now, lifetime)
	if err != nil {
		s.logger().Error("issuer: sign", "kid", v.active.kid, "error", err)
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: "could not sign the token"}
	}
	return &tokenResponse{AccessToken: token, TokenType: tokenType(jkt), ExpiresIn: int64(lifetime / time.Second), Scope: scope}, nil
}

// parseTokenRequest reads and checks a token request, and finds the
// client's credentials.
func (s *Server) parseTokenRequest(r *http.Request, form url.Values) (tokenRequest, *oauthError) {
	var req tokenRequest
	var oerr *oauthError
	// §3.2: a parameter without a value is as if omitted.
	switch gt := form.Get("grant_type"); gt {
	case grantClientCredentials:
	case "":
		return req, errRequest("missing grant_type")
	default:
		use := "client_credentials"
		if s.exchange != nil {
			use += " or " + grantTokenExchange
		}
		return req, &oauthError{status: http.StatusBadRequest, code: codeUnsupportedGrantType,
			description: "grant_type " + quote(gt) + " is not supported; use " + use}
	}
	if req.credentials, oerr = s.credentials(r, form); oerr != nil {
		return req, oerr
	}
	if scope := form.Get("scope"); scope != "" {
		if req.scope, oerr = parseScope(scope); oerr != nil {
			return req, oerr
		}
	}
	return req, nil
}

// readForm reads the form-encoded body of a request to the token or the
// revocation endpoint, with no parameter in the URL nor repeated.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.URL.RawQuery != "" {
		return nil, errRequest("parameters belong in the request body, not the URL")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return nil, &oauthError{status: http.StatusRequestEntityTooLarge, code: codeInvalidRequest, description: "request body larger than 16 KiB"}
		}
		return nil, errRequest("could not read the request body")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errRequest("request body is not valid application/x-www-form-urlencoded")
	}
	// RFC 6749 §3.2: parameters must not be repeated.
	if repeated := repeatedParameter(form); repeated != "" {
		return nil, errRequest("parameter " + quote(repeated) + " is repeated")
	}
	return form, nil
}

// clientCredentials finds the client's id and secret: client_secret_basic
// or client_secret_post (RFC 6749 §2.3.1), one of them.
func clientCredentials(r *http.Request, form url.Values) (id, secret string, _ *oauthError) {
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	switch auth := r.Header.Values("Authorization"); {
	case len(auth) > 1:
		return "", "", errRequest("more than one Authorization header")
	case len(auth) == 1:
		id, secret, oerr := parseBasic(auth[0])
		if oerr != nil {
			return "", "", oerr
		}
		if bodySecret != "" {
			// §2.3: one authentication method per request.
			return "", "", errRequest("client authenticated with both the Authorization header and client_secret; use one method")
		}
		if bodyID != "" && bodyID != id {
			return "", "", errRequest("client_id in the body differs from the one in the Authorization header")
		}
		return id, secret, nil
	case bodySecret != "":
		if bodyID == "" {
			return "", "", errRequest("client_secret without client_id")
		}
		return bodyID, bodySecret, nil
	case bodyID != "":
		return "", "", errClient("no client secret: public clients are not supported; authenticate with client_secret_basic or client_secret_post")
	}
	return "", "", errClient("no client authentication; use client_secret_basic or client_secret_post")
}

// repeatedParameter returns the first name, in sorted order, given more
// than once, or "".
func repeatedParameter(form url.Values) string {
	first := ""
	for name, values := range form {
		if len(values) > 1 && (first == "" || name < first) {
			first = name
		}
	}
	return first
}

// parseBasic decodes client_secret_basic credentials: HTTP Basic (RFC
// 7617) of the form-urlencoded client id and secret (RFC 6749 §2.3.1).
func parseBasic(header string) (id, secret string, _ *oauthError) {
	scheme, credentials, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", errClient("authentication scheme " + quote(scheme) + " is not supported; use Basic")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(credentials))
	if err != nil {
		return "", "", errRequest("malformed Basic credentials: not base64")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errRequest("malformed Basic credentials: no ':' between client id and secret")
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return "", "", errRequest("malformed Basic credentials: client id and secret must be form-urlencoded")
	}
	return id, secret, nil
}

// parseScope splits a scope parameter (RFC 6749 §3.3): names separated by
// single spaces, each of the characters %x21 / %x23-5B / %x5D-7E.
func parseScope(scope string) ([]string, *oauthError) {
	names := strings.Split(scope, " ")
	if len(names) > maxScopeNames {
		return nil, errScope("scope names more than 256 permissions")
	}
	for _, n := range names {
		if n == "" {
			return nil, errScope("malformed scope: names are separated by single spaces")
		}
		for i := range len(n) {
			if c := n[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return nil, errScope("malformed scope: a name holds a character outside %x21 / %x23-5B / %x5D-7E")
			}
		}
	}
	return names, nil
}

// authenticate checks a client's id and secret. An unknown client and a
// wrong secret take the same path: a cache lookup that misses, the failure
// limits, one hash verification (against a dummy hash for an unknown
// client), one recorded failure, and the same answer.
func (s *Server) authenticate(r *http.Request, id, secret string) (*client, *oauthError) {
	c := s.registry.Load().clients[id]
	hash := s.dummyHash
	if c != nil && c.hash != "" {
		hash = c.hash
	}
	now := s.cfg.now()
	fp := s.cache.fingerprint(id, secret)
	if hit := s.cache.hit(fp, hash, now); hit && c != nil && c.hash != "" {
		return c, nil
	}
	idKey, ipKey := clientKey(id), addrKey(s.cfg.clientAddr(r))
	if wait := max(s.byClient.wait(idKey, now), s.byAddr.wait(ipKey, now)); wait > 0 {
		s.logger().Debug("issuer: too many failed authentications", "client_id", logID(id), "remote", r.RemoteAddr)
		return nil, &oauthError{status: http.StatusTooManyRequests, code: codeTemporarilyUnavailable,
			description: "too many failed authentications; retry later", retryAfter: wait}
	}
	select {
	case s.hashSlots <- struct{}{}:
	case <-r.Context().Done():
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: "request canceled"}
	}
	ok, err := s.cfg.hasher.Verify(hash, []byte(secret))
	<-s.hashSlots
	if err != nil {
		s.logger().Error("issuer: verify secret", "client_id", logID(id), "error", err)
		ok = false
	}
	if !ok || c == nil || c.hash == "" { // a certificate client has no secret
		s.byClient.fail(idKey, now)
		s.byAddr.fail(ipKey, now)
		s.logger().Debug("issuer: client authentication failed", "client_id", logID(id), "remote", r.RemoteAddr)
		return nil, errAuthentication
	}
	s.cache.add(fp, hash, now)
	return c, nil
}

// logID bounds a caller-supplied client id for logs.
func logID(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}

// grant resolves the permissions a token carries: all the client's grants,
// or the subset it asked for.
func (s *Server) grant(c *client, requested []string) (map[string]uint64, string, *oauthError) {
	if requested == nil {
		return c.masks, c.scope, nil
	}
	masks := make(map[string]uint64, len(c.masks))
	var unknown, denied []string
	for _, name := range requested {
		p, ok := s.cat.Permission(name)
		switch {
		case !ok:
			unknown = append(unknown, name)
		case c.masks[p.Domain]&p.Mask == 0:
			denied = append(denied, name)
		default:
			masks[p.Domain] |= p.Mask
		}
	}
	if len(unknown) > 0 {
		return nil, "", errScope("unknown permission " + strings.Join(unknown, ", "))
	}
	if len(denied) > 0 {
		return nil, "", errScope("permission " + strings.Join(denied, ", ") + " not granted to this client")
	}
	return masks, scopeOf(s.cat, masks), nil
}
