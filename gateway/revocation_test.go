package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/revocation"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/redistest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/licensing"
)

// gauge reports whether the Prometheus text metrics holds the gauge name
// with value want.
func gauge(metrics, name string, want int) bool {
	return regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? ` + strconv.Itoa(want) + `$`).MatchString(metrics)
}

// listRequirements calls the gateway with tok, over Connect.
func (s *stack) listRequirements(tok string) error {
	_, err := s.licensingClient(tok).ListRequirements(context.Background(),
		connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"}))
	return err
}

// isRevoked reports whether err is the refusal of a revoked token, as the
// caller sees it: Unauthenticated, "token revoked", reason TOKEN_REVOKED.
func isRevoked(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated || ce.Message() != "token revoked" {
		return false
	}
	return errorInfo(err).GetReason() == "TOKEN_REVOKED"
}

// revokedOnAll waits until every gateway refuses tok as revoked, for at
// most a second after start, and returns how long it took.
func revokedOnAll(t *testing.T, gateways []*stack, tok string, start time.Time) time.Duration {
	t.Helper()
	for i, g := range gateways {
		for {
			err := g.listRequirements(tok)
			if isRevoked(err) {
				break
			}
			if err != nil {
				t.Fatalf("gateway %d: %v, want the token revoked", i, err)
			}
			if time.Since(start) > time.Second {
				t.Fatalf("gateway %d still accepts the token a second after its revocation", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return time.Since(start)
}

// Three gateway replicas, each with its own verifier, token cache and
// revocation set, accept a token; after "portcullis clients revoke" (the
// code the command runs, against a running issuer's registry), and
// separately after an RFC 7009 revocation, all three refuse it within a
// second, from their verified-token caches too; a replica started after
// the revocations refuses both tokens at its first call. Through a shared
// Redis, and without it through the issuer's feed.
func TestRevocationAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"redis", "feed"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			cat, err := catalog.New(protoregistry.GlobalFiles)
			if err != nil {
				t.Fatal(err)
			}
			opts := []issuer.Option{issuer.WithRevocationPollInterval(50 * time.Millisecond)}
			section := "" // the default: the feed the issuer's metadata names
			if via == "redis" {
				client, prefix := redistest.Shared(t)
				store, err := revocation.NewRedis(client, revocation.WithPrefix(prefix))
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, issuer.WithRevocationStore(store))
				section = fmt.Sprintf("revocation: {source: redis, redis: {prefix: %q}}\n", prefix)
			}
			iss := issuertest.Start(t, cat, opts...)
			_, lic := licensing.New().Handler()
			yaml := fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
`, iss.URL, issuertest.Audience, h2ctest.Serve(t, lic)) + section
			var gateways []*stack
			for range 3 {
				gateways = append(gateways, startGateway(t, iss, yaml))
			}
			readerSecret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
			writerSecret := iss.AddClient(t, issuer.Client{ID: "writer", Grants: []string{"LIC.READ_REQUIREMENTS"}})
			acceptedByAll := func(tok string) {
				t.Helper()
				for i, g := range gateways {
					for range 2 { // the second from the verified-token cache
						if err := g.listRequirements(tok); err != nil {
							t.Fatalf("gateway %d: %v", i, err)
						}
					}
				}
			}

			readers := iss.Token(t, "reader", readerSecret)
			acceptedByAll(readers)
			start := time.Now()
			if err := issuer.RevokeClient(iss.RegistryPath, "reader"); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: after clients revoke, 3 gateways refuse the token after %v", via, revokedOnAll(t, gateways, readers, start))

			writers := iss.Token(t, "writer", writerSecret)
			acceptedByAll(writers)
			start = time.Now()
			form := url.Values{"token": {writers}}
			req, _ := http.NewRequest("POST", iss.Server.RevocationURL(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("writer", writerSecret)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("RFC 7009 revocation: %s", res.Status)
			}
			t.Logf("%s: after an RFC 7009 revocation, 3 gateways refuse the token after %v", via, revokedOnAll(t, gateways, writers, start))

			late := startGateway(t, iss, yaml)
			for _, tok := range []string{readers, writers} {
				if err := late.listRequirements(tok); !isRevoked(err) {
					t.Fatalf("a replica started after the revocation: first call %v, want the token revoked", err)
				}
			}
			// The writer's next token works everywhere.
			gateways = append(gateways, late)
			acceptedByAll(iss.Token(t, "writer", writerSecret))

			var ready struct {
				Status      string
				Revocations struct {
					Status  string
					Entries int
				}
			}
			if err := json.Unmarshal([]byte(adminGet(t, late.admin+"/readyz")), &ready); err != nil {
				t.Fatal(err)
			}
			if ready.Status != "ready" || ready.Revocations.Status != "fresh" || ready.Revocations.Entries != 2 {
				t.Fatalf("/readyz %+v, want ready with 2 fresh revocations", ready)
			}
			metrics := adminGet(t, late.admin+"/metrics")
			if !gauge(metrics, "portcullis_revocation_stale", 0) || !gauge(metrics, "portcullis_revocation_entries", 2) {
				t.Errorf("/metrics lacks portcullis_revocation_stale 0 and portcullis_revocation_entries 2")
			}
		})
	}
}

// A gateway whose revocation feed stops answering says so in /readyz and
// in portcullis_revocation_stale, and keeps serving: a later item decides
// which methods refuse to run on stale revocations.
func TestRevocationStaleness(t *testing.T) {
	t.Parallel()
	env := gatewaytest.Start(t)
	iss := env.Issuer
	feed, feedURL, down := stoppableFeed(t, iss)
	s := startGateway(t, iss, fmt.Sprintf(`
issuers: [{issuer: %q, audiences: [%q], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: %q}]
revocation: {feeds: [{issuer: %q, url: %q}], staleness: 200ms}
`, iss.URL, issuertest.Audience, env.LicensingURL, iss.URL, feedURL))
	secret := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	tok := iss.Token(t, "reader", secret)
	if err := s.listRequirements(tok); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := adminGet(t, s.admin+"/readyz")
		if strings.Contains(body, `"status":"stale"`) {
			if !strings.Contains(body, "502 Bad Gateway") || !strings.Contains(body, `"status":"ready"`) {
				t.Fatalf("/readyz %s, want ready, stale revocations and the reason", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %s, want the revocations stale", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := adminGet(t, s.admin+"/metrics"); !gauge(m, "portcullis_revocation_stale", 1) {
		t.Fatal("/metrics does not report the revocations stale")
	}
	if err := s.listRequirements(tok); err != nil {
		t.Fatalf("a call with stale revocations: %v", err)
	}
	// The feed's revocations still apply once it is back.
	feed.Add(revocation.Revocation{Issuer: iss.URL, ClientID: "reader", Before: time.Now(), Expires: time.Now().Add(time.Hour)})
	down.Store(false)
	start := time.Now()
	revokedOnAll(t, []*stack{s}, tok, start)
}
