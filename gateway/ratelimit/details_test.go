package ratelimit_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/ratelimit"
)

// wantedDetails are the details a refusal must carry: an ErrorInfo, a
// RetryInfo, and a QuotaFailure unless quotaSubject is empty.
type wantedDetails struct {
	reason           string
	metadata         map[string]string
	retry            time.Duration
	quotaSubject     string
	quotaDescription string
}

// limitedDetails are the details of a rate limit refusal.
func limitedDetails(procedure, policy string, retry time.Duration, subject, description string) wantedDetails {
	return wantedDetails{
		reason:           ratelimit.ReasonRateLimited,
		metadata:         map[string]string{"procedure": procedure, "policy": policy},
		retry:            retry,
		quotaSubject:     subject,
		quotaDescription: description,
	}
}

// wantDetails checks the details of a refusal, given as they were decoded
// by a connect or a grpc-go client.
func wantDetails(t *testing.T, details []proto.Message, want wantedDetails) {
	t.Helper()
	var infos, retries, quotas int
	for _, d := range details {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			infos++
			if d.GetReason() != want.reason || d.GetDomain() != authz.ErrorDomain {
				t.Errorf("ErrorInfo reason %q domain %q, want %q %q", d.GetReason(), d.GetDomain(), want.reason, authz.ErrorDomain)
			}
			if len(d.GetMetadata()) != len(want.metadata) {
				t.Errorf("ErrorInfo metadata %v, want %v", d.GetMetadata(), want.metadata)
			}
			for k, v := range want.metadata {
				if d.GetMetadata()[k] != v {
					t.Errorf("ErrorInfo metadata %q = %q, want %q", k, d.GetMetadata()[k], v)
				}
			}
		case *errdetails.RetryInfo:
			retries++
			if got := d.GetRetryDelay().AsDuration(); got != want.retry {
				t.Errorf("RetryInfo retry_delay %s, want %s", got, want.retry)
			}
		case *errdetails.QuotaFailure:
			quotas++
			v := d.GetViolations()
			if len(v) != 1 || v[0].GetSubject() != want.quotaSubject || v[0].GetDescription() != want.quotaDescription {
				t.Errorf("QuotaFailure violations %v, want one of subject %q, description %q", v, want.quotaSubject, want.quotaDescription)
			}
		default:
			t.Errorf("unexpected detail %T", d)
		}
	}
	wantQuotas := 1
	if want.quotaSubject == "" {
		wantQuotas = 0
	}
	if infos != 1 || retries != 1 || quotas != wantQuotas {
		t.Errorf("%d ErrorInfo, %d RetryInfo, %d QuotaFailure details, want 1, 1, %d", infos, retries, quotas, wantQuotas)
	}
}

// connectDetails decodes the details of a connect error.
func connectDetails(t *testing.T, cerr *connect.Error) []proto.Message {
	t.Helper()
	var out []proto.Message
	for _, d := range cerr.Details() {
		v, err := d.Value()
		if err != nil {
			t.Fatalf("detail %s: %v", d.Type(), err)
		}
		out = append(out, v)
	}
	return out
}

// wantPushback checks gRPC's retry pushback: ms milliseconds for the gRPC
// protocols, absent for Connect.
func wantPushback(t *testing.T, protocol string, meta interface{ Values(string) []string }, ms string) {
	t.Helper()
	got := meta.Values("Grpc-Retry-Pushback-Ms")
	if protocol == "connect" {
		if len(got) != 0 {
			t.Errorf("Connect response has grpc-retry-pushback-ms %q", got)
		}
		return
	}
	if len(got) != 1 || got[0] != ms {
		t.Errorf("grpc-retry-pushback-ms = %q, want [%q]", got, ms)
	}
}
