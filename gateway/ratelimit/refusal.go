package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
)

// Reasons of the google.rpc.ErrorInfo detail of refusals, in the domain
// [authz.ErrorDomain].
const (
	// ReasonRateLimited: a call or a stream message over its limit.
	ReasonRateLimited = "RATE_LIMITED"
	// ReasonAuthFailures: a call from an address in cool-down after too
	// many failed authentications ([Guard]).
	ReasonAuthFailures = "AUTH_FAILURES"
	// ReasonLimiterUnavailable: a call the store could not decide.
	ReasonLimiterUnavailable = "RATE_LIMITER_UNAVAILABLE"
)

// headerRetryPushback is gRPC's retry pushback: how many milliseconds a
// client should wait before it retries, read from the trailers.
const headerRetryPushback = "Grpc-Retry-Pushback-Ms"

// Subjects of the google.rpc.QuotaFailure detail, after AIP-193: the
// authenticated client, or the address of an anonymous one.
const (
	subjectClientPrefix = "client:"
	subjectAddress      = "address"
)

// limitError is the error of a call or message over its limit. Its message
// is what the client reads.
type limitError struct {
	procedure  string
	messages   bool
	retryAfter time.Duration
}

func (e *limitError) Error() string {
	what := "rate limit"
	if e.messages {
		what = "stream message rate limit"
	}
	return fmt.Sprintf("%s exceeded for %s: retry in %s", what, e.procedure, ceilMillisecond(e.retryAfter))
}

func (e *limitError) Is(target error) bool { return target == ErrLimited }

// limitedError refuses a call or a stream message over its limit, res,
// with ResourceExhausted and the details that say why, who and when; for
// gRPC, the retry pushback in the error's metadata, which gRPC sends as
// trailers. The caller writes the RateLimit fields.
func limitedError(procedure, protocol string, messages bool, principal *token.Principal, res Result) *connect.Error {
	retry := ceilMillisecond(res.RetryAfter)
	cerr := connect.NewError(connect.CodeResourceExhausted,
		&limitError{procedure: procedure, messages: messages, retryAfter: res.RetryAfter})
	policy, what, per := policyCalls, "calls", "client"
	if messages {
		policy, what, per = policyMessages, "messages", "stream"
	} else if principal == nil || principal.ClientID == "" {
		per = "address"
	}
	subject := subjectAddress
	if principal != nil && principal.ClientID != "" {
		subject = subjectClientPrefix + principal.ClientID
	}
	addDetails(cerr,
		&errdetails.ErrorInfo{Reason: ReasonRateLimited, Domain: authz.ErrorDomain, Metadata: map[string]string{
			"procedure": procedure,
			"policy":    policy,
		}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     subject,
			Description: what + " " + res.Limit.String() + ", per " + per,
		}}},
	)
	setPushback(cerr.Meta(), protocol, retry)
	return cerr
}

// setPushback sets gRPC's retry pushback for a gRPC or gRPC-Web call.
func setPushback(h http.Header, protocol string, retry time.Duration) {
	if protocol == connect.ProtocolGRPC || protocol == connect.ProtocolGRPCWeb {
		h[headerRetryPushback] = []string{strconv.FormatInt(int64(retry/time.Millisecond), 10)}
	}
}

func addDetails(cerr *connect.Error, details ...proto.Message) {
	for _, d := range details {
		if detail, err := connect.NewErrorDetail(d); err == nil {
			cerr.AddDetail(detail)
		}
	}
}

// unavailableError keeps the store's failure for the server's logs while
// the client reads only that the limiter is unavailable.
type unavailableError struct {
	procedure string
	cause     error
}

func (e *unavailableError) Error() string {
	return "rate limiter unavailable for " + e.procedure + ": try again later"
}

func (e *unavailableError) Unwrap() error { return e.cause }

func storeError(ctx context.Context, procedure string, err error) *connect.Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		code := connect.CodeCanceled
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			code = connect.CodeDeadlineExceeded
		}
		return connect.NewError(code, ctxErr)
	}
	cerr := connect.NewError(connect.CodeUnavailable, &unavailableError{procedure: procedure, cause: err})
	addDetails(cerr, &errdetails.ErrorInfo{Reason: ReasonLimiterUnavailable, Domain: authz.ErrorDomain,
		Metadata: map[string]string{"procedure": procedure}})
	return cerr
}
