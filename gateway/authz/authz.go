package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/dpop"
	"github.com/portcullis/portcullis/gateway/token"
)

// Authorizer decides whether a call may proceed: it verifies the caller's
// bearer token and checks that it holds every permission the called method
// requires. It is safe for concurrent use.
type Authorizer struct {
	cat       *catalog.Catalog
	verifier  *token.Verifier
	challenge string // `Bearer realm="..."`, and resource_metadata="..." when set
	fresh     func() error
	now       func() time.Time

	dpop          *dpop.Verifier // nil: DPoP-bound tokens are refused
	dpopChallenge string         // `DPoP realm="...", algs="..."`
}

// New returns an authorizer of the methods of cat, verifying tokens with v.
// With a nil v, which trusts no issuer, only public methods can be called,
// and calls that bear a token are refused.
func New(cat *catalog.Catalog, v *token.Verifier, opts ...Option) (*Authorizer, error) {
	if cat == nil {
		return nil, errors.New("authz: nil catalog")
	}
	cfg := newConfig(opts)
	if len(cfg.problems) > 0 {
		return nil, fmt.Errorf("authz: invalid options: %s", strings.Join(cfg.problems, "; "))
	}
	challenge, err := cfg.challenge()
	if err != nil {
		return nil, err
	}
	a := &Authorizer{cat: cat, verifier: v, challenge: challenge, fresh: cfg.fresh, now: cfg.now, dpop: cfg.dpop}
	if a.dpop != nil {
		a.dpopChallenge = dpopChallenge(challenge, a.dpop)
	}
	return a, nil
}

// Check decides a call of procedure ("/package.Service/Method") with the
// request header, and returns the caller's principal: nil for a public
// method called without a token. A cached token costs no allocation.
//
// The error is a *connect.Error to send as it is: Unauthenticated for a
// missing or invalid token (wrapping a *[token.Error]), PermissionDenied
// for a caller lacking permissions or a method not in the catalog
// (wrapping a *[DeniedError]), Unavailable when the issuer's keys could not
// be fetched. Its Meta holds the WWW-Authenticate challenge of RFC 6750.
func (a *Authorizer) Check(ctx context.Context, procedure string, header http.Header) (*token.Principal, error) {
	m, ok := a.cat.Method(procedure)
	if !ok {
		return nil, a.deniedError(&DeniedError{Procedure: procedure}, header)
	}
	return a.check(ctx, m, header)
}

// Authorize is [Authorizer.Check] for HTTP middleware: it returns ctx with
// the principal (see [token.FromContext]).
func (a *Authorizer) Authorize(ctx context.Context, procedure string, header http.Header) (context.Context, error) {
	p, err := a.Check(ctx, procedure, header)
	if err != nil {
		return nil, err
	}
	return a.decided(ctx, p), nil
}

// HoldsVerifiedToken reports whether the bearer token of header is one the
// verifier has verified before and would accept from its cache right now,
// or an opaque issuer's token whose active introspection answer is at hand
// ([token.Verifier.Cached]). It costs a cache lookup, no cryptography and
// no request: an address guard uses it to let known-good callers through
// while it refuses their neighbours.
func (a *Authorizer) HoldsVerifiedToken(header http.Header) bool {
	if a.verifier == nil {
		return false
	}
	raw, err := bearer(header)
	return err == nil && raw != "" && a.verifier.Cached(raw)
}

// check is the decision that Check, the gate and the interceptor share.
func (a *Authorizer) check(ctx context.Context, m *catalog.Method, header http.Header) (*token.Principal, error) {
	if m.HighValue && a.fresh != nil {
		if a.fresh() != nil {
			return nil, staleError(m)
		}
	}
	raw, scheme, err := credentials(header)
	if err != nil {
		return nil, a.schemeError(err, scheme, header)
	}
	if raw == "" {
		if m.Public {
			return nil, nil
		}
		return nil, a.schemeError(errMissing, scheme, header)
	}
	if a.verifier == nil {
		return nil, a.schemeError(errNoIssuer, scheme, header)
	}
	p, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, a.schemeError(err, scheme, header)
	}
	proven, cerr := a.proof(ctx, header, raw, scheme, p)
	if cerr != nil {
		return nil, cerr
	}
	if err := binding(ctx, m, p, proven); err != nil {
		return nil, a.schemeError(err, scheme, header)
	}
	if !m.Public && !m.Allows(p.Masks) {
		return nil, a.deniedError(&DeniedError{Procedure: m.Procedure, Missing: m.Missing(p.Masks), Caller: p.ClientID}, header)
	}
	if m.MaxTokenAge > 0 {
		if err := a.tokenAge(m, p, header); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// method finds the catalog's method for a call. The procedure names it; a
// method descriptor given as schema must describe the same method.
func (a *Authorizer) method(procedure string, schema any, header http.Header) (*catalog.Method, error) {
	md, hasSchema := schema.(protoreflect.MethodDescriptor)
	m, ok := a.cat.Method(procedure)
	switch {
	case ok && (!hasSchema || md.FullName() == m.Descriptor.FullName()):
		return m, nil
	case !ok && hasSchema && md.Parent() != nil:
		if m, ok := a.cat.Method("/" + string(md.Parent().FullName()) + "/" + string(md.Name())); ok {
			return m, nil
		}
	}
	return nil, a.deniedError(&DeniedError{Procedure: procedure}, header)
}

type decidedKey struct{}

// decided returns ctx marked as decided by a, with the principal if any.
func (a *Authorizer) decided(ctx context.Context, p *token.Principal) context.Context {
	ctx = context.WithValue(ctx, decidedKey{}, a)
	if p != nil {
		ctx = token.NewContext(ctx, p)
	}
	return ctx
}

// decidedIn reports whether a already decided the call of ctx, in its gate.
func (a *Authorizer) decidedIn(ctx context.Context) bool {
	d, _ := ctx.Value(decidedKey{}).(*Authorizer)
	return d == a
}

var (
	errTwoHeaders = &token.Error{Kind: token.ErrMalformed, Reason: "more than one Authorization header"}
	errEmpty      = &token.Error{Kind: token.ErrMalformed, Reason: "empty bearer token"}
	errMissing    = &token.Error{Kind: token.ErrMissing, Reason: "missing bearer token"}
	errNoIssuer   = &token.Error{Kind: token.ErrUntrusted, Reason: "token issuer not trusted"}
)

// credentials returns the access token of the Authorization header and
// its scheme: Bearer (RFC 6750 §2.1) or DPoP (RFC 9449 §7.1); "" if there
// is none. Other schemes count as no token.
func credentials(header http.Header) (string, scheme, error) {
	values := header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", schemeBearer, nil
	case 1:
	default:
		return "", schemeBearer, errTwoHeaders
	}
	v := values[0]
	s, n := schemeOf(v)
	if n == 0 {
		return "", schemeBearer, nil
	}
	raw := strings.TrimLeft(v[n:], " ")
	if raw == "" {
		if s == schemeDPoP {
			return "", s, errEmptyDPoP
		}
		return "", s, errEmpty
	}
	return raw, s, nil
}

// bearer returns the token of the Authorization header, of either scheme.
func bearer(header http.Header) (string, error) {
	raw, _, err := credentials(header)
	return raw, err
}
