package issuer

import (
	"encoding/json"
	"net/http"
)

// IntrospectionPath is the path of the token introspection endpoint (RFC
// 7662), after the path of the issuer URL.
const IntrospectionPath = "/oauth2/introspect"

// IntrospectionURL returns the URL of the token introspection endpoint.
func (s *Server) IntrospectionURL() string { return s.issuer + IntrospectionPath }

// introspection is the answer of the introspection endpoint (RFC 7662
// §2.2). An inactive token gets {"active": false} and nothing else.
type introspection struct {
	Active    bool              `json:"active"`
	Scope     string            `json:"scope,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	Subject   string            `json:"sub,omitempty"`
	Expiry    int64             `json:"exp,omitempty"`
	IssuedAt  int64             `json:"iat,omitempty"`
	NotBefore int64             `json:"nbf,omitempty"`
	Audience  string            `json:"aud,omitempty"`
	Issuer    string            `json:"iss,omitempty"`
	ID        string            `json:"jti,omitempty"`
	TokenType string            `json:"token_type,omitempty"`
	Perms     map[string]uint64 `json:"perms"` // domain → mask; {} when none
	Tier      string            `json:"tier,omitempty"`
	// Cnf is what a bound token is bound to (RFC 8705 §3.2, RFC 9449
	// §6.2).
	Cnf *introspectedConfirmation `json:"cnf,omitempty"`
}

// introspectedConfirmation is the cnf of an introspected token.
type introspectedConfirmation struct {
	CertificateThumbprint string `json:"x5t#S256,omitempty"`
	KeyThumbprint         string `json:"jkt,omitempty"`
}

var inactive = []byte(`{"active":false}`)

// serveIntrospect is the token introspection endpoint of RFC 7662: a
// client registered with introspect: true, authenticated as at the token
// endpoint, learns whether a token is active and what it grants. A token
// that is expired, revoked, malformed, or not this issuer's is inactive,
// and the answer says nothing more about it.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	body, oerr := s.introspect(w, r)
	if oerr != nil {
		oerr.write(w, s.issuer)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.Write(body)
}

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) ([]byte, *oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: codeInvalidRequest, description: "the introspection endpoint accepts only POST"}
	}
	form, oerr := readForm(w, r)
	if oerr != nil {
		return nil, oerr
	}
	cr, oerr := s.credentials(r, form)
	if oerr != nil {
		return nil, oerr
	}
	c, oerr := s.authenticateWith(r, cr)
	if oerr != nil {
		return nil, oerr
	}
	if !c.introspect {
		// RFC 7662 §2.3 leaves the answer to a caller without the right
		// to introspect to the server; 403 tells it apart from wrong
		// credentials.
		return nil, &oauthError{status: http.StatusForbidden, code: codeUnauthorizedClient, description: "client " + quote(c.id) + " may not introspect tokens; register it with introspect: true"}
	}
	raw := form.Get("token")
	if raw == "" {
		return nil, errRequest("missing token")
	}
	// token_type_hint is ignored: access tokens are all there is (§2.1).
	// A revocation recorded in the file counts at once, as at the token
	// endpoint, whatever the poll interval.
	s.ingestRevocations()
	p, err := s.verifyOwn(r.Context(), raw)
	if err != nil || s.rev.set.Revoked(p.Issuer, p.TokenID, p.ClientID, p.IssuedAt) {
		return inactive, nil
	}
	iat := p.IssuedAt.Unix()
	if p.IssuedAt.IsZero() {
		iat = 0
	}
	var cnf *introspectedConfirmation
	if c := p.Confirmation; c.Bound() {
		cnf = &introspectedConfirmation{CertificateThumbprint: c.CertificateThumbprint, KeyThumbprint: c.KeyThumbprint}
	}
	body, _ := json.Marshal(introspection{
		Active:    true,
		Scope:     scopeOf(s.cat, p.Masks),
		ClientID:  p.ClientID,
		Subject:   p.Subject,
		Expiry:    p.ExpiresAt.Unix(),
		IssuedAt:  iat,
		NotBefore: iat, // the issuer mints tokens valid from their iat
		Audience:  s.audience,
		Issuer:    p.Issuer,
		ID:        p.TokenID,
		TokenType: "Bearer",
		Perms:     p.Masks,
		Tier:      p.Tier,
		Cnf:       cnf,
	})
	return body, nil
}
