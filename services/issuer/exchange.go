package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
)

// The names of token exchange (RFC 8693).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken and TokenTypeJWT are the subject and actor
	// token types the issuer accepts (RFC 8693 §3); it issues access tokens.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// Exchange configures the token exchange grant (RFC 8693): a caller
// presents a token of a trusted external issuer (the subject token) and
// receives a token of this issuer carrying the permissions the mapping
// rules give the external subject.
//
// Who may exchange: a client of the registry flagged exchange (its
// authentication is that of the client credentials grant), which becomes
// the token's actor (act.sub) unless an actor token names another; or,
// when Public is set, any caller without client authentication. A
// registered client that is not flagged gets unauthorized_client.
type Exchange struct {
	// Issuers are the trusted external issuers.
	Issuers []ExternalIssuer
	// Resources are the audience and resource values a caller may ask
	// for, besides the issuer's audience; the token's aud is the one asked
	// for. Any other is invalid_target.
	Resources []string
	// Public lets callers without client authentication exchange tokens.
	Public bool
}

// ExternalIssuer is a trusted issuer of subject tokens and its mapping
// rules. A subject token gets the grants of the registry client its
// subject maps to, if any, else the union of the grants of the claim
// rules it matches, with the client_id "ext:" and the external client_id
// (or sub), apart from every registry client; a token matching no rule is
// invalid_grant.
type ExternalIssuer struct {
	// Issuer says how its tokens are verified, as the gateway verifies
	// tokens: Issuer, Audiences (this issuer's audience, typically), and
	// JWKSURL or Discover. Type defaults to at+jwt; token.TypeAny accepts
	// ID tokens and other JWTs.
	token.Issuer
	// Subjects maps an external sub, or client_id, to a client of the
	// registry: the token carries that client's grants and tier, and its
	// client_id. The client must be in the registry when the exchange
	// happens.
	Subjects map[string]string
	// Claims give grants to tokens whose claim holds a value.
	Claims []ClaimRule
}

// ClaimRule gives Grants to subject tokens whose claim Claim holds Value:
// equals it (a string), contains it (an array of strings), or names it
// (a space-separated string, such as scope).
type ClaimRule struct {
	Claim  string
	Value  string
	Grants []string
}

// WithExchange turns on the token exchange grant (RFC 8693) at the token
// endpoint. New reports an exchange with no issuer, an issuer that is not
// usable, and a rule naming an unknown permission. Applies to New.
func WithExchange(x Exchange) Option {
	return optionFunc(func(c *config) { c.exchange = &x })
}

// exchange is a compiled [Exchange].
type exchange struct {
	verifier  *token.Verifier
	issuers   map[string]*externalIssuer
	resources []string
	public    bool
}

type externalIssuer struct {
	subjects map[string]string
	rules    []compiledRule
}

type compiledRule struct {
	claim, value string
	masks        map[string]uint64
}

// newExchange compiles x, and starts the verifier of its issuers.
func newExchange(x *Exchange, cat *catalog.Catalog, opts ...token.Option) (*exchange, error) {
	if len(x.Issuers) == 0 {
		return nil, errors.New("exchange: no trusted issuer")
	}
	e := &exchange{issuers: map[string]*externalIssuer{}, resources: slices.Clone(x.Resources), public: x.Public}
	var issuers []token.Issuer
	var claims []string
	var errs []error
	for _, is := range x.Issuers {
		if _, dup := e.issuers[is.Issuer.Issuer]; dup {
			errs = append(errs, fmt.Errorf("exchange: issuer %q is listed twice", is.Issuer.Issuer))
			continue
		}
		ei := &externalIssuer{subjects: is.Subjects}
		for _, r := range is.Claims {
			if r.Claim == "" || r.Value == "" {
				errs = append(errs, fmt.Errorf("exchange: issuer %q: a claim rule needs a claim and a value", is.Issuer.Issuer))
				continue
			}
			masks, err := grantMasks(cat, r.Grants)
			if err != nil {
				errs = append(errs, fmt.Errorf("exchange: issuer %q: claim %s=%s: %w", is.Issuer.Issuer, r.Claim, r.Value, err))
				continue
			}
			ei.rules = append(ei.rules, compiledRule{claim: r.Claim, value: r.Value, masks: masks})
			if !slices.Contains(claims, r.Claim) {
				claims = append(claims, r.Claim)
			}
		}
		e.issuers[is.Issuer.Issuer] = ei
		issuers = append(issuers, is.Issuer)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(claims) > 0 {
		opts = append(opts, token.WithClaims(claims...))
	}
	v, err := token.NewVerifier(context.Background(), issuers, opts...)
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	e.verifier = v
	return e, nil
}

// exchangeToken answers a token exchange request (RFC 8693 §2.1).
func (s *Server) exchangeToken(r *http.Request, form url.Values) (*tokenResponse, *oauthError) {
	x := s.exchange
	// A revoked client neither exchanges nor is mapped to (see token).
	s.ingestRevocations()
	var caller *client
	if r.Header.Get("Authorization") != "" || form.Get("client_id") != "" || form.Get("client_secret") != "" {
		cr, oerr := s.credentials(r, form)
		if oerr != nil {
			return nil, oerr
		}
		if caller, oerr = s.authenticateWith(r, cr); oerr != nil {
			return nil, oerr
		}
		if !caller.exchange {
			return nil, &oauthError{status: http.StatusBadRequest, code: codeUnauthorizedClient, description: "this client may not exchange tokens"}
		}
	} else if !x.public {
		return nil, errClient("no client authentication; token exchange needs a client flagged exchange")
	}

	subjectToken, subjectType := form.Get("subject_token"), form.Get("subject_token_type")
	switch {
	case subjectToken == "":
		return nil, errRequest("missing subject_token")
	case subjectType == "":
		return nil, errRequest("missing subject_token_type")
	case subjectType != TokenTypeJWT && subjectType != TokenTypeAccessToken:
		return nil, errTokenType("subject_token_type " + quote(subjectType) + " is not supported; use " + TokenTypeJWT + " or " + TokenTypeAccessToken)
	}
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return nil, errTokenType("requested_token_type " + quote(rt) + " is not supported; the issuer issues " + TokenTypeAccessToken)
	}
	actorToken, actorType := form.Get("actor_token"), form.Get("actor_token_type")
	switch {
	case actorToken == "" && actorType != "":
		return nil, errRequest("actor_token_type without actor_token")
	case actorToken != "" && actorType == "":
		return nil, errRequest("missing actor_token_type")
	case actorToken != "" && actorType != TokenTypeJWT && actorType != TokenTypeAccessToken:
		return nil, errTokenType("actor_token_type " + quote(actorType) + " is not supported; use " + TokenTypeJWT + " or " + TokenTypeAccessToken)
	}
	aud, oerr := x.target(s.audience, form.Get("audience"), form.Get("resource"))
	if oerr != nil {
		return nil, oerr
	}
	var requested []string
	if scope := form.Get("scope"); scope != "" {
		if requested, oerr = parseScope(scope); oerr != nil {
			return nil, oerr
		}
	}

	subject, err := x.verifier.Verify(r.Context(), subjectToken)
	if err != nil {
		return nil, errGrant("subject_token: " + reason(err))
	}
	var act *actor
	if actorToken != "" {
		a, err := x.verifier.Verify(r.Context(), actorToken)
		if err != nil {
			return nil, errGrant("actor_token: " + reason(err))
		}
		act = &actor{Subject: a.Subject, Issuer: a.Issuer}
		if act.Subject == "" {
			act.Subject = a.ClientID
		}
	} else if caller != nil {
		act = &actor{Subject: caller.id}
	}

	mapped, oerr := s.mapSubject(subject)
	if oerr != nil {
		return nil, oerr
	}
	// Bound to the caller's certificate, if it has one; refused without
	// one if the caller or the client mapped to gets only bound tokens.
	cnf, oerr := s.certificateBinding(r, caller)
	if oerr == nil {
		_, oerr = s.certificateBinding(r, mapped)
	}
	if oerr != nil {
		return nil, oerr
	}
	masks, scope, oerr := s.grant(mapped, requested)
	if oerr != nil {
		return nil, oerr
	}
	v, err := s.view()
	if err != nil || v.active == nil {
		s.logger().Error("issuer: no active signing key", "error", err)
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: codeTemporarilyUnavailable, description: "no signing key is active"}
	}
	now := s.cfg.now()
	lifetime := mapped.lifetime
	if lifetime == 0 {
		lifetime = s.lifetime
	}
	// Never outlive the subject token.
	if left := subject.ExpiresAt.Sub(now).Truncate(time.Second); left < lifetime {
		lifetime = left
	}
	if lifetime < time.Second {
		return nil, errGrant("subject_token expires within a second")
	}
	sub := subject.Subject
	if sub == "" {
		sub = subject.ClientID
	}
	tok, err := s.sign(v.active, accessClaims{
		Subject: sub, Audience: aud, ClientID: mapped.id, Scope: scope, Perms: masks, Tier: mapped.tier, Act: act, Cnf: cnf,
	}, now, lifetime)
	if err != nil {
		s.logger().Error("issuer: sign", "kid", v.active.kid, "error", err)
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", description: "could not sign the token"}
	}
	s.logger().Debug("issuer: token exchanged", "issuer", subject.Issuer, "client_id", mapped.id, "jti", subject.TokenID)
	return &tokenResponse{AccessToken: tok, IssuedTokenType: TokenTypeAccessToken, TokenType: "Bearer", ExpiresIn: int64(lifetime / time.Second), Scope: scope}, nil
}

// target checks the audience and resource parameters (RFC 8693 §2.1) and
// returns the aud of the token.
func (x *exchange) target(own, audience, resource string) (string, *oauthError) {
	if audience != "" && resource != "" && audience != resource {
		return "", errTarget("audience and resource name different targets; name one")
	}
	want := audience
	if want == "" {
		want = resource
	}
	if want == "" || want == own {
		return own, nil
	}
	if !slices.Contains(x.resources, want) {
		return "", errTarget("the issuer issues no token for " + quote(want))
	}
	return want, nil
}

// externalPrefix starts the client_id of tokens mapped by claim rules.
const externalPrefix = "ext:"

// mapSubject finds what a verified subject token is granted: a client of
// the registry its subject or client id maps to, or else the union of the
// claim rules it matches, as a client named after the external client.
func (s *Server) mapSubject(p *token.Principal) (*client, *oauthError) {
	ei := s.exchange.issuers[p.Issuer]
	if ei == nil { // cannot happen: the verifier trusts only these
		return nil, errGrant("subject_token: untrusted issuer")
	}
	for _, key := range []string{p.Subject, p.ClientID} {
		id, ok := ei.subjects[key]
		if !ok || key == "" {
			continue
		}
		c := s.registry.Load().clients[id]
		if c == nil {
			s.logger().Warn("issuer: exchange maps a subject to a client not in the registry", "issuer", p.Issuer, "client_id", id)
			return nil, errGrant("subject_token: the client its subject maps to is not registered")
		}
		return c, nil
	}
	var masks map[string]uint64
	for _, r := range ei.rules {
		if !claimHolds(p.Claims[r.claim], r.value) {
			continue
		}
		if masks == nil {
			masks = map[string]uint64{}
		}
		for d, m := range r.masks {
			masks[d] |= m
		}
	}
	if masks == nil {
		return nil, errGrant("subject_token: no mapping rule grants its subject anything")
	}
	// "ext:" keeps it apart from every registry client: ':' is not allowed
	// in their ids, so neither revocations nor rate limits of a registry
	// client reach an external one of the same name.
	return &client{id: externalPrefix + p.ClientID, masks: masks, scope: scopeOf(s.cat, masks)}, nil
}

// claimHolds reports whether a claim value equals, contains, or names
// (space-separated) want.
func claimHolds(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want || slices.Contains(strings.Fields(v), want)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// reason is the refusal of a token, safe to show: never the token.
func reason(err error) string {
	if te, ok := errors.AsType[*token.Error](err); ok {
		return te.Reason
	}
	return "does not verify"
}

func errGrant(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: codeInvalidGrant, description: description}
}

func errTarget(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: codeInvalidTarget, description: description}
}

func errTokenType(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: codeUnsupportedTokenType, description: description}
}
