package telemetry

import (
	"context"
	"errors"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/gateway/token"
)

// MissingPermissions is implemented by the errors of a denied call. The
// decision of a call whose error wraps one (errors.As) names the
// permissions the caller lacked, such as "LIC.READ_ORDERS".
type MissingPermissions interface {
	MissingPermissions() []string
}

// ClientID is implemented by the errors of a call rejected after its
// token was verified, such as a denial by a request gate: the decision
// then names the client even though no context carries its principal.
type ClientID interface {
	ClientID() string
}

// rateLimitPolicyHeader is the metadata in which a rate-limited call's
// error names the limit that fired (draft-ietf-httpapi-ratelimit-headers).
const rateLimitPolicyHeader = "RateLimit-Policy"

// outcome is what the gateway decided about a call.
type outcome uint8

const (
	outcomeAllowed outcome = iota
	outcomeUnauthenticated
	outcomeDenied
	outcomeRateLimited
	outcomeInvalidRequest
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	outcomeAllowed:         "allowed",
	outcomeUnauthenticated: "unauthenticated",
	outcomeDenied:          "denied",
	outcomeRateLimited:     "rate_limited",
	outcomeInvalidRequest:  "invalid_request",
	outcomeError:           "error",
}

func (o outcome) String() string { return outcomeNames[o] }

// decision is what the telemetry of one call records about it.
type decision struct {
	outcome    outcome
	code       connect.Code // 0 when the call succeeded
	message    string       // the error's message
	clientID   string
	tier       string
	tokenID    string               // the token's jti
	missing    []string             // the missing permissions of a denied call
	policy     string               // the RateLimit-Policy of a rate-limited call
	httpStatus int                  // the response's HTTP status, for calls the edge records
	cert       *clientcert.Identity // the call's verified client certificate, if any
	generation uint64               // the configuration generation that decided; 0: not said
}

// caller records who called, from the principal and the client
// certificate ctx carries, if any.
func (d *decision) caller(ctx context.Context) {
	if p, ok := token.FromContext(ctx); ok {
		d.clientID, d.tier, d.tokenID = p.ClientID, p.Tier, p.TokenID
	}
	d.cert, _ = clientcert.FromContext(ctx)
}

// decide works out the decision of a call from its context and error.
// forwarded says whether the call was let through to a backend: its
// errors then belong to the backend, except a rate limit the gateway
// applies to a stream's messages, which names its policy.
func decide(ctx context.Context, err error, forwarded bool) decision {
	var d decision
	d.caller(ctx)
	if c := callFrom(ctx); c != nil {
		d.generation = c.generation
	}
	if err == nil {
		return d
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		d.code, d.message = connect.CodeUnknown, err.Error()
		if !forwarded {
			d.outcome = outcomeError
		}
		return d
	}
	d.code, d.message = ce.Code(), ce.Message()
	if connect.IsNotModifiedError(err) {
		d.code = 0
		return d
	}
	switch {
	case d.code == connect.CodeResourceExhausted && (!forwarded || ce.Meta().Get(rateLimitPolicyHeader) != ""):
		d.outcome = outcomeRateLimited
		d.policy = ce.Meta().Get(rateLimitPolicyHeader)
	case forwarded:
		d.outcome = outcomeAllowed
	case d.code == connect.CodeUnauthenticated:
		d.outcome = outcomeUnauthenticated
	case d.code == connect.CodePermissionDenied:
		d.outcome = outcomeDenied
		var mp MissingPermissions
		if errors.As(err, &mp) {
			d.missing = mp.MissingPermissions()
		}
	default:
		d.outcome = outcomeError
	}
	if d.clientID == "" && d.outcome != outcomeAllowed {
		var id ClientID
		if errors.As(err, &id) {
			d.clientID = id.ClientID()
		}
	}
	return d
}

// coded returns err as the connect error the client gets for it: context
// errors become CodeCanceled and CodeDeadlineExceeded, as connect turns
// them when it writes the response, instead of CodeUnknown.
func coded(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return err
}

// classify is the outcome of a call that was not forwarded.
func classify(err error) outcome {
	if err == nil {
		return outcomeAllowed
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated:
		return outcomeUnauthenticated
	case connect.CodePermissionDenied:
		return outcomeDenied
	case connect.CodeResourceExhausted:
		return outcomeRateLimited
	}
	return outcomeError
}

// statusCodes are the rpc.response.status_code values of the codes, as
// otelconnect writes them: gRPC's canonical names.
var statusCodes = func() (names [17]string) {
	names[0] = "OK"
	for c := connect.CodeCanceled; c <= connect.CodeUnauthenticated; c++ {
		names[c] = strings.ToUpper(c.String())
	}
	return names
}()

// codeName is the code's name in an access line: "ok", "permission_denied".
func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}
