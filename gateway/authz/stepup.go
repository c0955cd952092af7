package authz

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
)

// Reasons of the refusals of methods declaring max_token_age or
// high_value.
const (
	// ReasonTokenTooOld: the token is older than the method's
	// max_token_age; the caller must authenticate again (RFC 9470).
	ReasonTokenTooOld = "TOKEN_TOO_OLD"
	// ReasonRevocationsStale: the method is high-value and the gateway's
	// revocations are stale, so it cannot tell whether the token was
	// revoked.
	ReasonRevocationsStale = "REVOCATIONS_STALE"
)

// WithFreshness sets what high-value methods ((gateway.v1.access)
// high_value) check before every call: fresh returns nil while the
// revocations are fresh, and else why they are not; calls then fail
// closed with Unavailable. Without it, high-value methods are called like
// any other: there are no revocations to be stale. nil is invalid.
func WithFreshness(fresh func() error) Option {
	return optionFunc(func(c *config) {
		if fresh == nil {
			c.invalid("WithFreshness(nil)")
			return
		}
		c.fresh = fresh
	})
}

// WithClock sets the clock that token ages (max_token_age) are measured
// with: the verifier's, as a rule. The default is the system clock; nil
// is invalid.
func WithClock(clock token.Clock) Option {
	return optionFunc(func(c *config) {
		if clock == nil {
			c.invalid("WithClock(nil)")
			return
		}
		c.now = clock.Now
	})
}

// StepUpError is the cause of a refusal of a token older than the
// method's max_token_age. Find it with [errors.As].
type StepUpError struct {
	// Procedure is the method called.
	Procedure string
	// MaxAge is the method's max_token_age.
	MaxAge time.Duration
	// Caller is the client id of the refused token.
	Caller string
}

// Error says what the caller must do.
func (e *StepUpError) Error() string {
	return fmt.Sprintf("token older than the %ds this method accepts: authenticate again for a fresh token", int64(e.MaxAge/time.Second))
}

// ClientID returns the refused caller's client id, for telemetry.
func (e *StepUpError) ClientID() string { return e.Caller }

// errStale is the cause of a refusal of a high-value method while the
// revocations are stale.
var errStale = errors.New("the revocations are stale: high-value methods are refused until they are fresh again")

// tokenAge checks the caller's token against the method's max_token_age:
// its age is from auth_time when present, else from iat; a token with
// neither is too old.
func (a *Authorizer) tokenAge(m *catalog.Method, p *token.Principal, header http.Header) error {
	since := p.AuthTime
	if since.IsZero() {
		since = p.IssuedAt
	}
	if !since.IsZero() && a.now().Sub(since) <= m.MaxTokenAge {
		return nil
	}
	return a.stepUpError(&StepUpError{Procedure: m.Procedure, MaxAge: m.MaxTokenAge, Caller: p.ClientID}, header)
}

// stepUpError refuses a token too old for the method: Unauthenticated
// with the RFC 9470 challenge, whose max_age tells how recent a token the
// method accepts. gRPC callers, which get no response headers on errors,
// find max_age in the ErrorInfo metadata.
func (a *Authorizer) stepUpError(e *StepUpError, header http.Header) *connect.Error {
	ce := connect.NewError(connect.CodeUnauthenticated, e)
	maxAge := strconv.FormatInt(int64(e.MaxAge/time.Second), 10)
	setChallenge(ce, header, a.challenge+`, error="insufficient_user_authentication", error_description="`+quotable(e.Error())+`", max_age=`+maxAge)
	addInfo(ce, ReasonTokenTooOld, map[string]string{"procedure": e.Procedure, "max_age": maxAge})
	return ce
}

// staleError refuses a high-value method while the revocations are stale.
// Why they are stale is the gateway's business (its readiness and
// metrics say), not the caller's: the message does not tell.
func staleError(m *catalog.Method) *connect.Error {
	ce := connect.NewError(connect.CodeUnavailable, errStale)
	addInfo(ce, ReasonRevocationsStale, map[string]string{"procedure": m.Procedure})
	return ce
}
