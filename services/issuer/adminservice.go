package issuer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
	adminv1 "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
	"github.com/portcullis/portcullis/gen/portcullis/admin/v1/adminv1connect"
)

// ReasonGrantNotHeld is the reason of the google.rpc.ErrorInfo detail of
// a PermissionDenied refusal by the client administration service: the
// caller asked to grant, or to act on a client granted, permissions that
// its token does not hold. Its metadata names them ("missing") and the
// client ("client").
const ReasonGrantNotHeld = "GRANT_NOT_HELD"

// adminService implements portcullis.admin.v1.ClientAdminService on the
// issuer's registry.
type adminService struct {
	s *Server
}

var _ adminv1connect.ClientAdminServiceHandler = (*adminService)(nil)

func (a *adminService) ListClients(ctx context.Context, _ *connect.Request[adminv1.ListClientsRequest]) (*connect.Response[adminv1.ListClientsResponse], error) {
	if _, err := caller(ctx); err != nil {
		return nil, err
	}
	clients, err := ListClients(a.s.registryPath)
	if err != nil {
		return nil, a.failed("list clients", err)
	}
	res := &adminv1.ListClientsResponse{Clients: make([]*adminv1.Client, len(clients))}
	for i, c := range clients {
		res.Clients[i] = clientMessage(c)
	}
	return connect.NewResponse(res), nil
}

func (a *adminService) ListPermissions(ctx context.Context, _ *connect.Request[adminv1.ListPermissionsRequest]) (*connect.Response[adminv1.ListPermissionsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	res := &adminv1.ListPermissionsResponse{}
	for _, d := range a.s.cat.Domains() {
		for _, perm := range d.Permissions {
			res.Permissions = append(res.Permissions, &adminv1.Permission{
				Name:        perm.String(),
				Description: perm.Description,
				Grantable:   p.Masks[perm.Domain]&perm.Mask != 0,
			})
		}
	}
	return connect.NewResponse(res), nil
}

func (a *adminService) CreateClient(ctx context.Context, req *connect.Request[adminv1.CreateClientRequest]) (*connect.Response[adminv1.CreateClientResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	c := Client{ID: m.GetId(), Grants: m.GetGrants(), Tier: m.GetTier(), CertificateBoundTokens: m.GetCertificateBoundTokens()}
	if d := m.GetTokenLifetime(); d != nil {
		if d.CheckValid() != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("token_lifetime is not a valid duration"))
		}
		c.TokenLifetime = d.AsDuration()
	}
	if ca := m.GetCertificateAuth(); ca != nil {
		if c.CertificateAuth, err = certificateAuth(ca, a.s.cfg.now()); err != nil {
			return nil, err
		}
	}
	if err := a.certificatesTaken(c); err != nil {
		return nil, err
	}
	if err := a.grantable(p, c.ID, c.Grants); err != nil {
		return nil, err
	}
	secret, err := addClient(a.s.registryPath, a.s.cat, a.s.cfg.hasher, a.s.cfg.maxLifetime, c)
	if err != nil {
		return nil, a.refused("create client", err)
	}
	a.applied(ctx, "client created", p, c.ID, "grants", c.Grants, "auth_method", authMethod(c))
	return connect.NewResponse(&adminv1.CreateClientResponse{Client: clientMessage(c), Secret: secret}), nil
}

func (a *adminService) UpdateGrants(ctx context.Context, req *connect.Request[adminv1.UpdateGrantsRequest]) (*connect.Response[adminv1.UpdateGrantsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id, grants := req.Msg.GetId(), req.Msg.GetGrants()
	if err := a.grantable(p, id, grants); err != nil {
		return nil, err
	}
	c, err := updateGrants(a.s.registryPath, a.s.cat, a.s.cfg.maxLifetime, id, grants, a.reach(p))
	if err != nil {
		return nil, a.refused("update grants", err)
	}
	a.applied(ctx, "client grants updated", p, id, "grants", grants)
	return connect.NewResponse(&adminv1.UpdateGrantsResponse{Client: clientMessage(c)}), nil
}

func (a *adminService) RotateSecret(ctx context.Context, req *connect.Request[adminv1.RotateSecretRequest]) (*connect.Response[adminv1.RotateSecretResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	secret, c, err := rotateSecret(a.s.registryPath, a.s.cfg.hasher, req.Msg.GetId(), a.reach(p))
	if err != nil {
		return nil, a.refused("rotate secret", err)
	}
	a.applied(ctx, "client secret rotated", p, c.ID)
	return connect.NewResponse(&adminv1.RotateSecretResponse{Client: clientMessage(c), Secret: secret}), nil
}

func (a *adminService) RevokeClient(ctx context.Context, req *connect.Request[adminv1.RevokeClientRequest]) (*connect.Response[adminv1.RevokeClientResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := revokeClient(a.s.registryPath, req.Msg.GetId(), a.reach(p), WithClock(a.s.cfg.now), WithMaxLifetime(a.s.cfg.maxLifetime))
	if err != nil {
		return nil, a.refused("revoke client", err)
	}
	a.applied(ctx, "client revoked", p, c.ID)
	return connect.NewResponse(&adminv1.RevokeClientResponse{}), nil
}

// grantable refuses grants that p's token does not hold.
func (a *adminService) grantable(p *token.Principal, id string, grants []string) error {
	if missing := a.notHeld(p, grants); len(missing) > 0 {
		return notHeldError(id, missing, fmt.Sprintf("cannot grant %s: the caller's token does not hold %s",
			strings.Join(missing, ", "), pronoun(len(missing))))
	}
	return nil
}

// reach returns the check that refuses to act on a client granted
// permissions that p's token does not hold: acting on it, p could give
// itself a secret, or a client, more powerful than itself.
func (a *adminService) reach(p *token.Principal) reachCheck {
	return func(c Client) error {
		if missing := a.notHeld(p, c.Grants); len(missing) > 0 {
			return notHeldError(c.ID, missing, fmt.Sprintf("client %q is granted %s, which the caller's token does not hold: a caller acts only on clients within its own grants",
				c.ID, strings.Join(missing, ", ")))
		}
		return nil
	}
}

// notHeld returns the permissions of refs that p's token does not hold,
// each once, in the order of refs. It leaves out references to no
// permission of the catalog: the registry refuses them as invalid.
func (a *adminService) notHeld(p *token.Principal, refs []string) []string {
	var missing []string
	for _, ref := range refs {
		perm, ok := a.s.cat.Permission(ref)
		if ok && p.Masks[perm.Domain]&perm.Mask == 0 && !slices.Contains(missing, ref) {
			missing = append(missing, ref)
		}
	}
	return missing
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// notHeldError is a refusal for permissions the caller does not hold.
func notHeldError(client string, missing []string, msg string) *connect.Error {
	ce := connect.NewError(connect.CodePermissionDenied, errors.New(msg))
	detail, err := connect.NewErrorDetail(&errdetails.ErrorInfo{
		Reason:   ReasonGrantNotHeld,
		Domain:   authz.ErrorDomain,
		Metadata: map[string]string{"client": client, "missing": strings.Join(missing, ", ")},
	})
	if err == nil {
		ce.AddDetail(detail)
	}
	return ce
}

// refused turns an error of a registry change into the caller's answer.
func (a *adminService) refused(what string, err error) error {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, ErrUnknownClient):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, ErrClientExists):
		return connect.NewError(connect.CodeAlreadyExists, err)
	case errors.As(err, new(invalidError)):
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return a.failed(what, err)
}

// failed is a failure of the issuer, not of the caller: logged, and
// answered without the details of the issuer's files.
func (a *adminService) failed(what string, err error) error {
	a.s.logger().Error("issuer: admin: "+what, "error", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("%s failed; the issuer's log says why", what))
}

// applied reloads the registry, so that the change applies at once, and
// logs who changed what. It never logs a secret.
func (a *adminService) applied(ctx context.Context, msg string, p *token.Principal, client string, attrs ...any) {
	if err := a.s.reloadRegistry(true); err != nil {
		a.s.logger().ErrorContext(ctx, "issuer: admin: registry changed but not reloaded", "error", err)
	}
	a.s.logger().InfoContext(ctx, "issuer: admin: "+msg, append([]any{"caller", p.ClientID, "client_id", client}, attrs...)...)
}

func clientMessage(c Client) *adminv1.Client {
	m := &adminv1.Client{Id: c.ID, Grants: c.Grants, Tier: c.Tier, TokenEndpointAuthMethod: authMethod(c), CertificateBoundTokens: c.CertificateBoundTokens}
	if c.TokenLifetime != 0 {
		m.TokenLifetime = durationpb.New(c.TokenLifetime)
	}
	if c.CertificateAuth.Method() != "" {
		a := c.CertificateAuth
		m.CertificateAuth = &adminv1.CertificateAuth{SubjectDn: a.SubjectDN, SanUri: a.SANURI, SanDns: a.SANDNS}
		for _, cert := range a.Certificates {
			m.CertificateAuth.CertificatesPem = append(m.CertificateAuth.CertificatesPem, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
		}
	}
	return m
}

// authMethod is the token_endpoint_auth_method of c.
func authMethod(c Client) string {
	if m := c.CertificateAuth.Method(); m != "" {
		return m
	}
	return AuthClientSecret
}

// certificateAuth reads a CertificateAuth message: one PEM certificate per
// entry of certificates_pem, none expired at now.
func certificateAuth(m *adminv1.CertificateAuth, now time.Time) (CertificateAuth, error) {
	a := CertificateAuth{SubjectDN: m.GetSubjectDn(), SANURI: m.GetSanUri(), SANDNS: m.GetSanDns()}
	for i, text := range m.GetCertificatesPem() {
		block, rest := pem.Decode([]byte(text))
		if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) > 0 {
			return a, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("certificate_auth.certificates_pem[%d] is not one PEM certificate", i))
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return a, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("certificate_auth.certificates_pem[%d]: %w", i, err))
		}
		if now.After(cert.NotAfter) {
			// It could never sign in.
			return a, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("certificate_auth.certificates_pem[%d] expired on %s", i, cert.NotAfter.UTC().Format(time.RFC3339)))
		}
		a.Certificates = append(a.Certificates, cert)
	}
	if a.Method() == "" {
		return a, connect.NewError(connect.CodeInvalidArgument, errors.New("certificate_auth names no subject_dn, san_uri, san_dns or certificate"))
	}
	return a, nil
}

// certificatesTaken refuses a client that could never get a token from
// this issuer: one that authenticates with a certificate, or whose tokens
// are bound to one, where the issuer takes no client certificates, or one
// of tls_client_auth where it has no client CA to verify the chain with.
func (a *adminService) certificatesTaken(c Client) error {
	mtls := a.s.cfg.mtls
	switch {
	case mtls == nil && (c.CertificateAuth.Method() != "" || c.CertificateBoundTokens):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the issuer takes no client certificates: certificate_auth and certificate_bound_tokens need its mutual TLS"))
	case c.CertificateAuth.Method() == AuthTLSClient && mtls.roots == nil:
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the issuer has no client CA to verify a tls_client_auth certificate with: register the client's self-signed certificates instead"))
	}
	return nil
}
