package authz

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail that
// refusals carry.
const ErrorDomain = "portcullis.dev"

// DeniedError is the cause of a refusal of a caller whose token is valid
// but who may not call the method. Find it with [errors.As].
type DeniedError struct {
	// Procedure is the method called, "/package.Service/Method".
	Procedure string
	// Missing lists the permissions the caller lacks, in the order the
	// method requires them. It is empty when the method is not in the
	// catalog: methods that declare no access are refused to everyone.
	Missing []*catalog.Permission
	// Caller is the client id of the valid token that was refused, or ""
	// when the method is not in the catalog.
	Caller string
}

// MissingPermissions returns the references of the missing permissions,
// such as "LIC.READ_ORDERS", for telemetry.
func (e *DeniedError) MissingPermissions() []string {
	refs := make([]string, len(e.Missing))
	for i, p := range e.Missing {
		refs[i] = p.String()
	}
	return refs
}

// ClientID returns the refused caller's client id, for telemetry.
func (e *DeniedError) ClientID() string { return e.Caller }

// Error names what is missing, such as "missing LIC.READ_ORDERS, ORD.WRITE".
func (e *DeniedError) Error() string {
	if len(e.Missing) == 0 {
		return "method " + e.Procedure + " declares no access"
	}
	var b strings.Builder
	b.WriteString("missing ")
	for i, p := range e.Missing {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Reasons of the google.rpc.ErrorInfo detail of refusals.
const (
	ReasonTokenMissing      = "TOKEN_MISSING"
	ReasonTokenMalformed    = "TOKEN_MALFORMED"
	ReasonTokenExpired      = "TOKEN_EXPIRED"
	ReasonTokenNotYetValid  = "TOKEN_NOT_YET_VALID"
	ReasonTokenUntrusted    = "TOKEN_UNTRUSTED"
	ReasonTokenBadSignature = "TOKEN_BAD_SIGNATURE"
	ReasonTokenBadClaims    = "TOKEN_BAD_CLAIMS"
	ReasonTokenRevoked      = "TOKEN_REVOKED"
	ReasonKeysUnavailable   = "KEYS_UNAVAILABLE"
	// ReasonRevocationsUnavailable: the gateway has not loaded the
	// revocations yet and cannot tell whether the token was revoked.
	ReasonRevocationsUnavailable = "REVOCATIONS_UNAVAILABLE"
	ReasonOverloaded             = "TOKEN_VERIFICATION_OVERLOADED"
	ReasonPermissionMissing      = "PERMISSION_MISSING"
	ReasonMethodUndeclared       = "METHOD_UNDECLARED"
	ReasonTokenUnbound           = "TOKEN_BINDING_NOT_PROVEN"
)

var tokenReasons = []struct {
	kind   error
	reason string
}{
	{token.ErrMissing, ReasonTokenMissing},
	{token.ErrMalformed, ReasonTokenMalformed},
	{token.ErrExpired, ReasonTokenExpired},
	{token.ErrNotYetValid, ReasonTokenNotYetValid},
	{token.ErrUntrusted, ReasonTokenUntrusted},
	{token.ErrBadSignature, ReasonTokenBadSignature},
	{token.ErrBadClaims, ReasonTokenBadClaims},
	{token.ErrRevoked, ReasonTokenRevoked},
	{token.ErrKeysUnavailable, ReasonKeysUnavailable},
	{token.ErrRevocationsUnavailable, ReasonRevocationsUnavailable},
	{token.ErrOverloaded, ReasonOverloaded},
	{token.ErrUnbound, ReasonTokenUnbound},
}

// overloadRetryAfter is the delay a caller refused for overload is told
// to wait: token verifications in flight finish within it.
const overloadRetryAfter = time.Second

// tokenError turns a refusal of the verifier into the error the caller
// sees: Unauthenticated with an RFC 6750 challenge, or Unavailable when
// the keys or the revocations are missing (broken, not denied) or the
// verifier is overloaded (busy, not denied: retry after the
// google.rpc.RetryInfo delay, or the Retry-After header outside gRPC).
func (a *Authorizer) tokenError(err error, header http.Header) *connect.Error {
	reason := ReasonTokenMalformed
	for _, r := range tokenReasons {
		if errors.Is(err, r.kind) {
			reason = r.reason
			break
		}
	}
	var te *token.Error
	if !errors.As(err, &te) {
		// Not a refusal: a failure of the verifier itself.
		return connect.NewError(connect.CodeInternal, err)
	}
	switch {
	case errors.Is(err, token.ErrKeysUnavailable), errors.Is(err, token.ErrRevocationsUnavailable):
		ce := connect.NewError(connect.CodeUnavailable, err)
		addInfo(ce, reason, nil)
		return ce
	case errors.Is(err, token.ErrOverloaded):
		ce := connect.NewError(connect.CodeUnavailable, err)
		setHeader(ce, header, "Retry-After", strconv.Itoa(int(overloadRetryAfter/time.Second)))
		addInfo(ce, reason, nil)
		if detail, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(overloadRetryAfter)}); err == nil {
			ce.AddDetail(detail)
		}
		return ce
	case errors.Is(err, token.ErrMissing):
		ce := connect.NewError(connect.CodeUnauthenticated, err)
		setChallenge(ce, header, a.challenge)
		addInfo(ce, reason, nil)
		return ce
	}
	ce := connect.NewError(connect.CodeUnauthenticated, err)
	setChallenge(ce, header, a.challenge+`, error="invalid_token", error_description="`+quotable(te.Reason)+`"`)
	addInfo(ce, reason, nil)
	return ce
}

// setChallenge sets the WWW-Authenticate header of RFC 6750 §3.
func setChallenge(ce *connect.Error, header http.Header, challenge string) {
	setHeader(ce, header, "WWW-Authenticate", challenge)
}

// setHeader sets a response header of a refusal, except for gRPC, which
// sends error metadata as HTTP trailers, where response control headers
// are not allowed (RFC 9110 §6.5.1): gRPC clients read grpc-status and
// the error details instead.
func setHeader(ce *connect.Error, header http.Header, key, value string) {
	if ct := header.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web") {
		return
	}
	ce.Meta().Set(key, value)
}

// deniedError refuses a caller who lacks permissions: PermissionDenied
// with an RFC 6750 insufficient_scope challenge.
func (a *Authorizer) deniedError(d *DeniedError, header http.Header) *connect.Error {
	ce := connect.NewError(connect.CodePermissionDenied, d)
	if len(d.Missing) == 0 {
		addInfo(ce, ReasonMethodUndeclared, map[string]string{"procedure": d.Procedure})
		return ce
	}
	msg := d.Error()
	setChallenge(ce, header, a.challenge+`, error="insufficient_scope", error_description="`+quotable(msg)+`"`)
	addInfo(ce, ReasonPermissionMissing, map[string]string{
		"procedure": d.Procedure,
		"missing":   strings.TrimPrefix(msg, "missing "),
	})
	return ce
}

func addInfo(ce *connect.Error, reason string, metadata map[string]string) {
	if detail, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: metadata}); err == nil {
		ce.AddDetail(detail)
	}
}

// quotable makes s fit in an RFC 6750 quoted string: printable ASCII
// without '"' and '\'.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}

// The interfaces through which telemetry learns about a refusal.
var (
	_ interface{ MissingPermissions() []string } = (*DeniedError)(nil)
	_ interface{ ClientID() string }             = (*DeniedError)(nil)
)
