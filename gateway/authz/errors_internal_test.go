package authz

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/portcullis/portcullis/gateway/token"
)

// A verifier too busy to verify a fresh token answers Unavailable, with
// when to retry: a RetryInfo detail in every protocol, and Retry-After
// where response headers are allowed. It asks for no credentials.
func TestTokenErrorOverloaded(t *testing.T) {
	t.Parallel()
	a := &Authorizer{challenge: `Bearer realm="portcullis"`}
	refusal := &token.Error{Kind: token.ErrOverloaded, Reason: "too many token verifications in flight; retry shortly"}
	for _, tc := range []struct {
		contentType string
		retryAfter  string
	}{
		{"application/proto", "1"},
		{"application/json", "1"},
		{"application/grpc-web+proto", "1"},
		{"application/grpc", ""},
		{"application/grpc+proto", ""},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			t.Parallel()
			ce := a.tokenError(refusal, http.Header{"Content-Type": {tc.contentType}})
			if ce.Code() != connect.CodeUnavailable || ce.Message() != refusal.Reason {
				t.Fatalf("got %v %q, want unavailable %q", ce.Code(), ce.Message(), refusal.Reason)
			}
			if got := ce.Meta().Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if got := ce.Meta().Get("WWW-Authenticate"); got != "" {
				t.Fatalf("WWW-Authenticate %q, want none", got)
			}
			var (
				info  *errdetails.ErrorInfo
				retry *errdetails.RetryInfo
			)
			for _, d := range ce.Details() {
				switch v, _ := d.Value(); v := v.(type) {
				case *errdetails.ErrorInfo:
					info = v
				case *errdetails.RetryInfo:
					retry = v
				}
			}
			if info.GetReason() != ReasonOverloaded || info.GetDomain() != ErrorDomain {
				t.Fatalf("ErrorInfo %v, want reason %s", info, ReasonOverloaded)
			}
			if retry.GetRetryDelay().AsDuration() != time.Second {
				t.Fatalf("RetryInfo %v, want a delay of 1s", retry)
			}
		})
	}
}

// A verifier that has not loaded its revocations cannot decide: the
// caller gets Unavailable, as when keys are missing, and no challenge.
func TestTokenErrorRevocationsUnavailable(t *testing.T) {
	t.Parallel()
	a := &Authorizer{challenge: `Bearer realm="portcullis"`}
	refusal := &token.Error{Kind: token.ErrRevocationsUnavailable, Reason: "token revocations not loaded yet; retry shortly"}
	ce := a.tokenError(refusal, http.Header{"Content-Type": {"application/proto"}})
	if ce.Code() != connect.CodeUnavailable || ce.Message() != refusal.Reason {
		t.Fatalf("got %v %q, want unavailable %q", ce.Code(), ce.Message(), refusal.Reason)
	}
	if got := ce.Meta().Get("WWW-Authenticate"); got != "" {
		t.Fatalf("WWW-Authenticate %q, want none", got)
	}
	var info *errdetails.ErrorInfo
	for _, d := range ce.Details() {
		if v, _ := d.Value(); v != nil {
			if i, ok := v.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
	}
	if info.GetReason() != ReasonRevocationsUnavailable {
		t.Fatalf("ErrorInfo %v, want reason %s", info, ReasonRevocationsUnavailable)
	}
}
