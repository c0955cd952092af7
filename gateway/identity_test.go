package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/token"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

const internalIssuer = "https://gateway.internal"

// verifyingBackend is the licensing backend behind authz, trusting only
// the gateway's internal tokens; it records the Authorization header of
// each call it gets.
type verifyingBackend struct {
	url      string
	verifier *token.Verifier
	handler  atomic.Pointer[http.Handler]

	mu   sync.Mutex
	seen []string
}

func (b *verifyingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.seen = append(b.seen, r.Header.Get("Authorization"))
	b.mu.Unlock()
	h := b.handler.Load()
	if h == nil { // a probe before trust: not serving yet
		http.Error(w, "backend starting", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

func (b *verifyingBackend) last() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[len(b.seen)-1]
}

// trust makes the backend verify with the gateway's key set, fetched from
// its admin listener.
func (b *verifyingBackend) trust(t *testing.T, admin, audience string) {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	b.verifier, err = token.NewVerifier(context.Background(), []token.Issuer{{
		Issuer: internalIssuer, Audiences: []string{audience}, JWKSURL: admin + gateway.JWKSPath, Type: "at+jwt",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.verifier.Close)
	if err := b.verifier.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(cat, b.verifier)
	if err != nil {
		t.Fatal(err)
	}
	_, h := licensing.New().Handler(connect.WithRequestGate(az.Gate()), connect.WithInterceptors(az.Interceptor()))
	b.handler.Store(&h)
}

// TestInternalIdentity routes the licensing service with identity
// internal to a backend that verifies with gateway/authz against the
// gateway's key set: through the gateway, in each protocol, the backend
// gets an internal token (iss the gateway, aud the configured audience,
// the caller's client id, tier and permissions) in place of the caller's,
// the same one for a caller's next call (no signature); called directly,
// it refuses a forged Portcullis-Client-Id and the caller's own token.
func TestInternalIdentity(t *testing.T) {
	t.Parallel()
	iss := gatewaytest.Issuer(t)
	b := &verifyingBackend{}
	b.url = h2ctest.Serve(t, b)
	s := startGateway(t, iss, fmt.Sprintf(`
issuers:
  - issuer: %q
    audiences: [%q]
    discovery: true
    type: at+jwt
routes:
  - service: example.licensing.v1.LicensingService
    backend: %q
    identity: internal
    audience: licensing
internal_tokens:
  issuer: %s
  lifetime: 60s
  key_dir: %s
`, iss.URL, issuertest.Audience, b.url, internalIssuer, t.TempDir()))
	b.trust(t, s.admin, "licensing")

	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	callerToken := iss.Token(t, "reader", secret)
	ctx := context.Background()
	req := func() *connect.Request[licensingv1.ListRequirementsRequest] {
		return connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
	}
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			client := s.licensingClient(callerToken, opts...)
			if _, err := client.ListRequirements(ctx, req()); err != nil {
				t.Fatalf("call through the gateway: %v", err)
			}
			first := b.last()
			internal, ok := strings.CutPrefix(first, "Bearer ")
			if !ok || internal == callerToken {
				t.Fatalf("backend got Authorization %.20q..., want an internal token", first)
			}
			p, err := b.verifier.Verify(ctx, internal)
			if err != nil {
				t.Fatal(err)
			}
			if p.Issuer != internalIssuer || p.ClientID != "reader" || p.Masks["LIC"] == 0 {
				t.Errorf("internal token: iss %q, client_id %q, perms %v", p.Issuer, p.ClientID, p.Masks)
			}
			if _, err := client.GetLicenceOrder(ctx, connect.NewRequest(&licensingv1.GetLicenceOrderRequest{Id: "lo-0001"})); connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("ungranted method: %v, want PermissionDenied from the gateway", err)
			}
			if _, err := client.ListRequirements(ctx, req()); err != nil {
				t.Fatal(err)
			}
			if again := b.last(); again != first {
				t.Error("a caller's second call got a newly signed internal token, want the cached one")
			}

			direct := func(tok string, forged bool) error {
				hc := &http.Client{Transport: h2ctest.Transport()}
				if tok != "" {
					hc.Transport = bearer{tok: tok, base: h2ctest.Transport()}
				}
				r := req()
				if forged {
					r.Header().Set("Portcullis-Client-Id", "admin")
				}
				_, err := licensingv1connect.NewLicensingServiceClient(hc, b.url, opts...).ListRequirements(ctx, r)
				return err
			}
			if err := direct("", true); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("direct call with a forged Portcullis-Client-Id: %v, want Unauthenticated", err)
			}
			if err := direct(callerToken, false); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("direct call with the caller's own token: %v, want Unauthenticated", err)
			}
			if err := direct(internal, false); err != nil {
				t.Errorf("direct call with the internal token: %v", err)
			}
		})
	}
}
