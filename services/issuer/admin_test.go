package issuer_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/catalog"
	adminv1 "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
	"github.com/portcullis/portcullis/gen/portcullis/admin/v1/adminv1connect"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// adminStack is an issuer serving the administration service, with three
// clients: "admin" (PORTCULLIS.* and two LIC permissions), "auditor"
// (PORTCULLIS.READ_CLIENTS) and "operator" (every LIC and ORD
// permission).
type adminStack struct {
	iss     *issuertest.Issuer
	secrets map[string]string
	log     *logtest.Buffer
}

var (
	adminGrants    = []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS", "LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS"}
	operatorGrants = []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}
)

func startAdmin(t *testing.T) *adminStack {
	t.Helper()
	log := &logtest.Buffer{}
	iss := issuertest.Start(t, newCatalog(t), issuer.WithAdmin(), issuer.WithLogger(slog.New(slog.NewTextHandler(log, nil))))
	s := &adminStack{iss: iss, secrets: map[string]string{}, log: log}
	for _, c := range []issuer.Client{
		{ID: "admin", Grants: adminGrants},
		{ID: "auditor", Grants: []string{"PORTCULLIS.READ_CLIENTS"}},
		{ID: "operator", Grants: operatorGrants, Tier: "pro"},
	} {
		s.secrets[c.ID] = iss.AddClient(t, c)
	}
	return s
}

// client returns an administration client calling as id (with its token
// narrowed to scopes, if any), or without a token for id "".
func (s *adminStack) client(t *testing.T, id string, opts ...connect.ClientOption) adminv1connect.ClientAdminServiceClient {
	t.Helper()
	return s.clientWithToken(s.token(t, id), opts...)
}

func (s *adminStack) token(t *testing.T, id string, scopes ...string) string {
	t.Helper()
	if id == "" {
		return ""
	}
	return s.iss.Token(t, id, s.secrets[id], scopes...)
}

func (s *adminStack) clientWithToken(tok string, opts ...connect.ClientOption) adminv1connect.ClientAdminServiceClient {
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if tok != "" {
				req.Header().Set("Authorization", "Bearer "+tok)
			}
			return next(ctx, req)
		}
	})
	return adminv1connect.NewClientAdminServiceClient(h2cClient(), s.iss.URL, append(opts, connect.WithInterceptors(auth))...)
}

// tokenErr reports whether a client gets a token with secret.
func (s *adminStack) tokenErr(id, secret string) error {
	_, err := s.iss.Credentials(id, secret).Token(context.Background())
	return err
}

// ids lists the registered clients' ids.
func (s *adminStack) ids(t *testing.T) []string {
	t.Helper()
	clients, err := issuer.ListClients(s.iss.RegistryPath)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range clients {
		ids = append(ids, c.ID+" "+strings.Join(c.Grants, ","))
	}
	return ids
}

// refusal is what a caller learns from a refused call.
type refusal struct {
	code     connect.Code
	message  string
	reason   string
	metadata map[string]string
}

func refusalOf(t *testing.T, err error) refusal {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *connect.Error", err)
	}
	r := refusal{code: ce.Code(), message: ce.Message()}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				r.reason, r.metadata = info.Reason, info.Metadata
			}
		}
	}
	return r
}

// TestAdminAuthorizes checks, in each protocol, that the service is
// guarded by the gateway's authorizer on the issuer's own tokens.
func TestAdminAuthorizes(t *testing.T) {
	t.Parallel()
	s := startAdmin(t)
	other := issuertest.Start(t, newCatalog(t)) // another issuer: its tokens are not trusted
	foreign := other.Token(t, "admin", other.AddClient(t, issuer.Client{ID: "admin", Grants: adminGrants}))
	for _, p := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"connect-get", []connect.ClientOption{connect.WithHTTPGet()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			res, err := s.client(t, "auditor", p.opts...).ListClients(ctx, connect.NewRequest(&adminv1.ListClientsRequest{}))
			if err != nil {
				t.Fatalf("auditor lists: %v", err)
			}
			var got []string
			for _, c := range res.Msg.GetClients() {
				got = append(got, c.GetId())
			}
			if !slices.Equal(got, []string{"admin", "auditor", "operator"}) {
				t.Errorf("ListClients = %v", got)
			}

			for _, tc := range []struct {
				name     string
				client   adminv1connect.ClientAdminServiceClient
				code     connect.Code
				message  string
				reason   string
				metadata map[string]string
			}{
				{"no token", s.client(t, "", p.opts...), connect.CodeUnauthenticated, "missing bearer token", "TOKEN_MISSING", nil},
				{"another issuer's token", s.clientWithToken(foreign, p.opts...), connect.CodeUnauthenticated, "token issuer not trusted", "TOKEN_UNTRUSTED", nil},
				{"without MANAGE_CLIENTS", s.client(t, "auditor", p.opts...), connect.CodePermissionDenied, "missing PORTCULLIS.MANAGE_CLIENTS", "PERMISSION_MISSING",
					map[string]string{"missing": "PORTCULLIS.MANAGE_CLIENTS", "procedure": adminv1connect.ClientAdminServiceRotateSecretProcedure}},
				{"without READ_CLIENTS", s.client(t, "operator", p.opts...), connect.CodePermissionDenied, "missing PORTCULLIS.READ_CLIENTS", "PERMISSION_MISSING",
					map[string]string{"missing": "PORTCULLIS.READ_CLIENTS", "procedure": adminv1connect.ClientAdminServiceListClientsProcedure}},
			} {
				var err error
				if tc.name == "without MANAGE_CLIENTS" {
					_, err = tc.client.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "auditor"}))
				} else {
					_, err = tc.client.ListClients(ctx, connect.NewRequest(&adminv1.ListClientsRequest{}))
				}
				r := refusalOf(t, err)
				if r.code != tc.code || r.message != tc.message || r.reason != tc.reason || (tc.metadata != nil && !mapsEqual(r.metadata, tc.metadata)) {
					t.Errorf("%s: refused with %v %q %s %v, want %v %q %s %v", tc.name, r.code, r.message, r.reason, r.metadata, tc.code, tc.message, tc.reason, tc.metadata)
				}
			}
		})
	}
	if got := s.ids(t); len(got) != 3 {
		t.Errorf("the refusals changed the registry: %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestAdminProvisions creates a client, whose secret gets a token with its
// grants at once, changes its grants, rotates its secret and revokes it.
func TestAdminProvisions(t *testing.T) {
	t.Parallel()
	s := startAdmin(t)
	ctx := context.Background()
	admin := s.client(t, "admin")

	created, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{
		Id: "newbie", Grants: []string{"LIC.READ_REQUIREMENTS"}, Tier: "free", TokenLifetime: durationpb.New(10 * time.Minute),
	}))
	if err != nil {
		t.Fatal(err)
	}
	secret := created.Msg.GetSecret()
	if c := created.Msg.GetClient(); c.GetId() != "newbie" || !slices.Equal(c.GetGrants(), []string{"LIC.READ_REQUIREMENTS"}) || c.GetTier() != "free" || c.GetTokenLifetime().AsDuration() != 10*time.Minute || len(secret) != 43 {
		t.Fatalf("CreateClient = %v, a secret of %d characters", c, len(secret))
	}
	claims := func(secret string) tokenClaims {
		t.Helper()
		c, _ := verifyToken(t, s.iss.URL, s.iss.Token(t, "newbie", secret), time.Now())
		return c
	}
	if c := claims(secret); c.Perms["LIC"] != 1 || len(c.Perms) != 1 || c.Tier != "free" || c.Expiry-c.IssuedAt != 600 {
		t.Errorf("the new client's token: perms %v, tier %q, lifetime %ds", c.Perms, c.Tier, c.Expiry-c.IssuedAt)
	}

	updated, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "newbie", Grants: []string{"LIC.READ_ORDERS", "LIC.READ_REQUIREMENTS"}}))
	if err != nil {
		t.Fatal(err)
	}
	if g := updated.Msg.GetClient().GetGrants(); !slices.Equal(g, []string{"LIC.READ_ORDERS", "LIC.READ_REQUIREMENTS"}) || updated.Msg.GetClient().GetTier() != "free" {
		t.Errorf("UpdateGrants = %v", updated.Msg.GetClient())
	}
	if c := claims(secret); c.Perms["LIC"] != 3 || c.Scope != "LIC.READ_REQUIREMENTS LIC.READ_ORDERS" {
		t.Errorf("after UpdateGrants, the token holds %v %q", c.Perms, c.Scope)
	}

	rotated, err := admin.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "newbie"}))
	if err != nil {
		t.Fatal(err)
	}
	newSecret := rotated.Msg.GetSecret()
	if newSecret == secret || len(newSecret) != 43 || rotated.Msg.GetClient().GetId() != "newbie" {
		t.Fatalf("RotateSecret = %v", rotated.Msg.GetClient())
	}
	if err := s.tokenErr("newbie", secret); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("the old secret after the rotation: %v, want invalid_client", err)
	}
	if c := claims(newSecret); c.Perms["LIC"] != 3 {
		t.Errorf("the new secret's token holds %v", c.Perms)
	}

	listed, err := admin.ListClients(ctx, connect.NewRequest(&adminv1.ListClientsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := listed.Msg.GetClients(); len(got) != 4 || got[2].GetId() != "newbie" || got[2].GetTokenLifetime().AsDuration() != 10*time.Minute {
		t.Errorf("ListClients = %v", got)
	}

	if _, err := admin.RevokeClient(ctx, connect.NewRequest(&adminv1.RevokeClientRequest{Id: "newbie"})); err != nil {
		t.Fatal(err)
	}
	if err := s.tokenErr("newbie", newSecret); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("the revoked client: %v, want invalid_client", err)
	}

	// The log says who did what, and never holds a secret.
	log := s.log.String()
	for _, want := range []string{
		`msg="issuer: admin: client created" caller=admin client_id=newbie grants=[LIC.READ_REQUIREMENTS]`,
		`msg="issuer: admin: client grants updated" caller=admin client_id=newbie grants="[LIC.READ_ORDERS LIC.READ_REQUIREMENTS]"`,
		`msg="issuer: admin: client secret rotated" caller=admin client_id=newbie`,
		`msg="issuer: admin: client revoked" caller=admin client_id=newbie`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) || strings.Contains(log, newSecret) {
		t.Errorf("the log holds a secret:\n%s", log)
	}
}

// TestAdminGrantsOnlyWhatTheCallerHolds is the rule against escalation: a
// caller grants only permissions its token holds, and acts only on
// clients whose every grant its token holds.
func TestAdminGrantsOnlyWhatTheCallerHolds(t *testing.T) {
	t.Parallel()
	s := startAdmin(t)
	ctx := context.Background()
	admin := s.client(t, "admin")
	if _, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "newbie", Grants: []string{"LIC.READ_REQUIREMENTS"}})); err != nil {
		t.Fatal(err)
	}
	// The admin's token narrowed to PORTCULLIS.MANAGE_CLIENTS: what the
	// token holds counts, not what the client could ask for.
	narrow := s.clientWithToken(s.token(t, "admin", "PORTCULLIS.MANAGE_CLIENTS"))
	before := s.ids(t)
	operatorSecret := s.secrets["operator"]

	for _, tc := range []struct {
		name    string
		call    func() error
		message string
		missing string
		client  string
	}{
		{"create with a permission the caller lacks", func() error {
			_, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "sneaky", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.WRITE"}}))
			return err
		}, `cannot grant ORD.WRITE: the caller's token does not hold it`, "ORD.WRITE", "sneaky"},
		{"create with two", func() error {
			_, err := admin.CreateClient(ctx, connect.NewRequest(&adminv1.CreateClientRequest{Id: "sneaky", Grants: []string{"ORD.READ", "LIC.WRITE_ORDERS", "ORD.READ"}}))
			return err
		}, `cannot grant ORD.READ, LIC.WRITE_ORDERS: the caller's token does not hold them`, "ORD.READ, LIC.WRITE_ORDERS", "sneaky"},
		{"grant a permission the caller lacks", func() error {
			_, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "newbie", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}}))
			return err
		}, `cannot grant ORD.READ: the caller's token does not hold it`, "ORD.READ", "newbie"},
		{"grant a permission the narrowed token lacks", func() error {
			_, err := narrow.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "newbie", Grants: []string{"LIC.READ_ORDERS"}}))
			return err
		}, `cannot grant LIC.READ_ORDERS: the caller's token does not hold it`, "LIC.READ_ORDERS", "newbie"},
		{"narrow a client beyond the caller's reach", func() error {
			_, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "operator", Grants: []string{"LIC.READ_REQUIREMENTS"}}))
			return err
		}, `client "operator" is granted LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE, which the caller's token does not hold: a caller acts only on clients within its own grants`,
			"LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE", "operator"},
		{"rotate the secret of a client beyond reach", func() error {
			_, err := admin.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "operator"}))
			return err
		}, `client "operator" is granted LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE, which the caller's token does not hold: a caller acts only on clients within its own grants`,
			"LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE", "operator"},
		{"revoke a client beyond reach", func() error {
			_, err := admin.RevokeClient(ctx, connect.NewRequest(&adminv1.RevokeClientRequest{Id: "operator"}))
			return err
		}, `client "operator" is granted LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE, which the caller's token does not hold: a caller acts only on clients within its own grants`,
			"LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE", "operator"},
		{"rotate with the narrowed token", func() error {
			_, err := narrow.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "newbie"}))
			return err
		}, `client "newbie" is granted LIC.READ_REQUIREMENTS, which the caller's token does not hold: a caller acts only on clients within its own grants`,
			"LIC.READ_REQUIREMENTS", "newbie"},
	} {
		r := refusalOf(t, tc.call())
		want := refusal{connect.CodePermissionDenied, tc.message, issuer.ReasonGrantNotHeld, map[string]string{"missing": tc.missing, "client": tc.client}}
		if r.code != want.code || r.message != want.message || r.reason != want.reason || !mapsEqual(r.metadata, want.metadata) {
			t.Errorf("%s: refused with\n%v %q %s %v, want\n%v %q %s %v", tc.name, r.code, r.message, r.reason, r.metadata, want.code, want.message, want.reason, want.metadata)
		}
	}
	if after := s.ids(t); !slices.Equal(after, before) {
		t.Errorf("refusals changed the registry:\n%v\nwant\n%v", after, before)
	}
	if err := s.tokenErr("operator", operatorSecret); err != nil {
		t.Errorf("the operator's secret, which no refused rotation may change: %v", err)
	}

	// Within reach, the same calls pass: the admin holds both of newbie's
	// new grants, and newbie is within its reach.
	if _, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "newbie", Grants: []string{"LIC.READ_ORDERS", "PORTCULLIS.READ_CLIENTS"}})); err != nil {
		t.Errorf("a grant within reach: %v", err)
	}
	if _, err := admin.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "auditor"})); err != nil {
		t.Errorf("rotating a client within reach: %v", err)
	}

	perms, err := admin.ListPermissions(ctx, connect.NewRequest(&adminv1.ListPermissionsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var grantable, all []string
	for _, p := range perms.Msg.GetPermissions() {
		all = append(all, p.GetName())
		if p.GetGrantable() {
			grantable = append(grantable, p.GetName())
		}
		if p.GetDescription() == "" {
			t.Errorf("%s has no description", p.GetName())
		}
	}
	if want := []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"}; !slices.Equal(grantable, want) {
		t.Errorf("grantable %v, want %v", grantable, want)
	}
	if want := []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE", "PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"}; !slices.Equal(all, want) {
		t.Errorf("permissions %v, want %v", all, want)
	}
}

// TestAdminRefusesBadRequests checks the codes of requests the registry
// refuses.
func TestAdminRefusesBadRequests(t *testing.T) {
	t.Parallel()
	s := startAdmin(t)
	ctx := context.Background()
	admin := s.client(t, "admin")
	create := func(c *adminv1.CreateClientRequest) error {
		_, err := admin.CreateClient(ctx, connect.NewRequest(c))
		return err
	}
	for _, tc := range []struct {
		name    string
		err     error
		code    connect.Code
		message string
	}{
		{"existing id", create(&adminv1.CreateClientRequest{Id: "auditor"}), connect.CodeAlreadyExists, `client "auditor": client already exists`},
		{"bad id", create(&adminv1.CreateClientRequest{Id: "-x"}), connect.CodeInvalidArgument, `client id "-x" is not 1 to 128 letters, digits, '.', '_' or '-' starting with a letter or digit`},
		{"bad tier", create(&adminv1.CreateClientRequest{Id: "x", Tier: "a b"}), connect.CodeInvalidArgument, `tier "a b" is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit`},
		{"unknown permission", create(&adminv1.CreateClientRequest{Id: "x", Grants: []string{"LIC.FLY"}}), connect.CodeInvalidArgument, `grants unknown permission "LIC.FLY": not in the catalog`},
		{"lifetime too long", create(&adminv1.CreateClientRequest{Id: "x", TokenLifetime: durationpb.New(48 * time.Hour)}), connect.CodeInvalidArgument, "token_lifetime 48h0m0s is above the maximum 24h0m0s"},
		{"lifetime invalid", create(&adminv1.CreateClientRequest{Id: "x", TokenLifetime: &durationpb.Duration{Seconds: 1, Nanos: -1}}), connect.CodeInvalidArgument, "token_lifetime is not a valid duration"},
		// This issuer takes no client certificates (no mutual TLS).
		{"certificate client", create(&adminv1.CreateClientRequest{Id: "x", CertificateAuth: &adminv1.CertificateAuth{SanUri: "spiffe://example.com/x"}}), connect.CodeFailedPrecondition, "the issuer takes no client certificates: certificate_auth and certificate_bound_tokens need its mutual TLS"},
		{"bound tokens", create(&adminv1.CreateClientRequest{Id: "x", CertificateBoundTokens: true}), connect.CodeFailedPrecondition, "the issuer takes no client certificates: certificate_auth and certificate_bound_tokens need its mutual TLS"},
		{"unknown client", func() error {
			_, err := admin.RotateSecret(ctx, connect.NewRequest(&adminv1.RotateSecretRequest{Id: "nobody"}))
			return err
		}(), connect.CodeNotFound, `client "nobody": no such client`},
		{"update an unknown client", func() error {
			_, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "nobody"}))
			return err
		}(), connect.CodeNotFound, `client "nobody": no such client`},
		{"revoke an unknown client", func() error {
			_, err := admin.RevokeClient(ctx, connect.NewRequest(&adminv1.RevokeClientRequest{Id: "nobody"}))
			return err
		}(), connect.CodeNotFound, `client "nobody": no such client`},
		{"too large", create(&adminv1.CreateClientRequest{Id: "x", Grants: slices.Repeat([]string{"LIC.READ_REQUIREMENTS"}, 4000)}), connect.CodeResourceExhausted,
			"message size 92003 is larger than configured max 65536"},
		{"grant an unknown permission", func() error {
			_, err := admin.UpdateGrants(ctx, connect.NewRequest(&adminv1.UpdateGrantsRequest{Id: "auditor", Grants: []string{"NOPE.X"}}))
			return err
		}(), connect.CodeInvalidArgument, `grants unknown permission "NOPE.X": not in the catalog`},
	} {
		r := refusalOf(t, tc.err)
		if r.code != tc.code || r.message != tc.message {
			t.Errorf("%s: %v %q, want %v %q", tc.name, r.code, r.message, tc.code, tc.message)
		}
	}
}

// TestAdminNeedsItsService: an issuer whose catalog lacks the service
// cannot serve it, and says so.
func TestAdminNeedsItsService(t *testing.T) {
	t.Parallel()
	files := prototest.Files(t, map[string]string{"test.proto": `syntax = "proto3";
package test.v1;
import "gateway/v1/options.proto";
message M {}
service S { rpc Get(M) returns (M) { option (gateway.v1.access) = {public: true}; } }`})
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = issuer.New(issuer.Config{IssuerURL: "http://127.0.0.1:1", Audience: "a", KeyDir: dir + "/keys", RegistryPath: dir + "/clients.yaml"}, cat,
		issuer.WithAdmin(), issuer.WithReloadInterval(0), issuer.WithLogger(discardLogger()))
	const want = "issuer: admin: the catalog lacks portcullis.admin.v1.ClientAdminService/ListClients: build it from descriptors that hold portcullis/admin/v1/admin.proto"
	if err == nil || err.Error() != want {
		t.Errorf("New = %v, want %q", err, want)
	}
}

// TestAdminUnderIssuerPath serves the service under the path of an issuer
// URL that has one, as the token endpoint is.
func TestAdminUnderIssuerPath(t *testing.T) {
	t.Parallel()
	l, base := listen(t)
	dir := t.TempDir()
	cat := newCatalog(t)
	srv, err := issuer.New(issuer.Config{IssuerURL: base + "/tenant", Audience: issuertest.Audience, KeyDir: dir + "/keys", RegistryPath: dir + "/clients.yaml"}, cat,
		issuer.WithAdmin(), issuer.WithReloadInterval(0), issuer.WithLogger(discardLogger()), issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	secret, err := issuer.AddClient(dir+"/clients.yaml", cat, issuer.Client{ID: "auditor", Grants: []string{"PORTCULLIS.READ_CLIENTS"}}, issuer.WithHasher(fastHasher))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	tok := (&issuertest.Issuer{Server: srv}).Token(t, "auditor", secret)
	client := adminv1connect.NewClientAdminServiceClient(http.DefaultClient, base+"/tenant", connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+tok)
			return next(ctx, req)
		}
	})))
	res, err := client.ListClients(context.Background(), connect.NewRequest(&adminv1.ListClientsRequest{}))
	if err != nil || len(res.Msg.GetClients()) != 1 {
		t.Fatalf("ListClients under /tenant = %v, %v", res, err)
	}
	if r := request(t, "POST", base+issuer.AdminServicePath+"ListClients", http.Header{"Content-Type": {"application/json"}}, "{}"); r.status != http.StatusNotFound {
		t.Errorf("outside the issuer's path: %d, want 404", r.status)
	}
}
