package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/gateway/token"
)

// Reasons of the google.rpc.ErrorInfo detail of DPoP refusals.
const (
	// ReasonDPoPProofInvalid: the DPoP proof is missing, malformed, stale,
	// replayed, or made for another request, token or key
	// (invalid_dpop_proof).
	ReasonDPoPProofInvalid = "DPOP_PROOF_INVALID"
	// ReasonDPoPNonceRequired: the proof must carry the server's nonce,
	// given in the DPoP-Nonce header and in the detail's metadata "nonce"
	// (use_dpop_nonce).
	ReasonDPoPNonceRequired = "DPOP_NONCE_REQUIRED"
	// ReasonDPoPUnavailable: the proof could not be checked for replay.
	ReasonDPoPUnavailable = "DPOP_REPLAY_UNAVAILABLE"
)

// WithDPoP accepts DPoP-bound access tokens (RFC 9449): sent as
// "Authorization: DPoP <token>" with a DPoP proof that v verifies against
// the call's method and URL (see [dpop.RecordTarget]), the token, and its
// cnf.jkt. Without it, a DPoP-bound token is refused.
func WithDPoP(v *dpop.Verifier) Option {
	return optionFunc(func(c *config) {
		if v == nil {
			c.invalid("nil DPoP verifier")
			return
		}
		c.dpop = v
	})
}

// scheme is the authentication scheme of the Authorization header.
type scheme uint8

const (
	schemeBearer scheme = iota
	schemeDPoP
)

// schemeOf returns the scheme v starts with and the length of its prefix
// with the space, or 0 for any other scheme.
func schemeOf(v string) (scheme, int) {
	const bearer, dpop = "Bearer ", "DPoP "
	switch {
	case len(v) >= len(bearer) && strings.EqualFold(v[:len(bearer)], bearer):
		return schemeBearer, len(bearer)
	case len(v) >= len(dpop) && strings.EqualFold(v[:len(dpop)], dpop):
		return schemeDPoP, len(dpop)
	}
	return schemeBearer, 0
}

var (
	errEmptyDPoP  = &token.Error{Kind: token.ErrMalformed, Reason: "empty DPoP token"}
	errNoDPoP     = &token.Error{Kind: token.ErrUnbound, Reason: "the gateway does not accept DPoP tokens"}
	errNotDPoP    = &token.Error{Kind: token.ErrUnbound, Reason: "token sent with the DPoP scheme is not bound to a DPoP key"}
	errDPoPBearer = &token.Error{Kind: token.ErrUnbound, Reason: "token is bound to a DPoP key: send it as \"Authorization: DPoP\" with a DPoP proof"}
)

// dpopChallenge returns the DPoP challenge (RFC 9449 §7.1) of a Bearer
// challenge: the same parameters, with the accepted algorithms.
func dpopChallenge(bearer string, v *dpop.Verifier) string {
	return "DPoP " + strings.TrimPrefix(bearer, "Bearer ") + `, algs="` + v.Algorithms() + `"`
}

// proof checks the DPoP proof of a call whose token p was verified: it
// reports whether the call proved the key of the token's cnf.jkt. A token
// bound to a key must come with the DPoP scheme and a proof; a token sent
// with the DPoP scheme must be bound to a key. The proof is verified at
// each call: it is unique to the call, never cached.
func (a *Authorizer) proof(ctx context.Context, header http.Header, raw string, s scheme, p *token.Principal) (bool, *connect.Error) {
	jkt := p.Confirmation.KeyThumbprint
	switch {
	case s == schemeBearer && jkt == "":
		return false, nil
	case s == schemeBearer:
		return false, a.schemeError(errDPoPBearer, schemeDPoP, header)
	case a.dpop == nil:
		return false, a.tokenError(errNoDPoP, header)
	case jkt == "":
		return false, a.schemeError(errNotDPoP, s, header)
	}
	r := dpop.Request{AccessToken: raw, KeyThumbprint: jkt}
	if t := dpop.FromContext(ctx); t != nil {
		r.Method, r.URL = t.Method, t.URL
	}
	if _, err := a.dpop.Verify(ctx, header, r); err != nil {
		return false, a.dpopError(err, header)
	}
	return true, nil
}

// schemeError is [Authorizer.tokenError] with the challenge of the scheme
// the caller used; a caller sending no token, when DPoP is accepted, is
// offered both schemes.
func (a *Authorizer) schemeError(err error, s scheme, header http.Header) *connect.Error {
	ce := a.tokenError(err, header)
	if a.dpop == nil {
		return ce
	}
	values := ce.Meta().Values("WWW-Authenticate")
	if len(values) != 1 {
		return ce
	}
	switch {
	case s == schemeDPoP:
		ce.Meta().Set("WWW-Authenticate", a.dpopChallenge+strings.TrimPrefix(values[0], a.challenge))
	case errors.Is(err, token.ErrMissing):
		ce.Meta().Add("WWW-Authenticate", a.dpopChallenge)
	}
	return ce
}

// dpopError turns a refusal of a proof into the error the caller sees:
// Unauthenticated with the DPoP challenge, error invalid_dpop_proof or
// use_dpop_nonce (then with the DPoP-Nonce header, which gRPC callers
// find in the trailers and in the ErrorInfo metadata too); Unavailable
// when the replay store could not be asked.
func (a *Authorizer) dpopError(err error, header http.Header) *connect.Error {
	var de *dpop.Error
	if !errors.As(err, &de) {
		return connect.NewError(connect.CodeInternal, err)
	}
	if errors.Is(err, dpop.ErrUnavailable) {
		ce := connect.NewError(connect.CodeUnavailable, err)
		addInfo(ce, ReasonDPoPUnavailable, nil)
		return ce
	}
	ce := connect.NewError(connect.CodeUnauthenticated, err)
	setChallenge(ce, header, a.dpopChallenge+`, error="`+de.Code()+`", error_description="`+quotable(de.Reason)+`"`)
	if de.Nonce != "" {
		ce.Meta().Set("DPoP-Nonce", de.Nonce)
		addInfo(ce, ReasonDPoPNonceRequired, map[string]string{"nonce": de.Nonce})
		return ce
	}
	addInfo(ce, ReasonDPoPProofInvalid, nil)
	return ce
}
