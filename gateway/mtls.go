package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/tlsfiles"
)

// ReasonCertificateRequired is the google.rpc.ErrorInfo reason (domain
// authz.ErrorDomain) of a call refused because its route requires a client
// certificate (routes[].client_certificate: required) and it came without
// a verified one.
const ReasonCertificateRequired = "CLIENT_CERTIFICATE_REQUIRED"

// newListenerTLS reads the main listener's certificate and the client
// CAs, once, at start: a file that does not load fails [New]. Later
// changes to the files are followed (package tlsfiles).
func (g *Gateway) newListenerTLS(t *config.TLS) error {
	if t == nil {
		return nil
	}
	opts := []tlsfiles.Option{tlsfiles.WithLogger(g.logger)}
	var err error
	if len(t.ClientCAFiles) > 0 {
		if g.clientCAs, err = tlsfiles.LoadPool(t.ClientCAFiles, opts...); err != nil {
			return fmt.Errorf("tls.client_ca_files: %w", err)
		}
	}
	if !t.Serves() {
		return nil
	}
	cert, err := tlsfiles.LoadKeyPair(t.CertFile, t.KeyFile, opts...)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	g.tlsConfig = tlsfiles.ServerConfig(base, cert, g.clientCAs, clientAuthType(t.ClientAuth))
	return nil
}

// clientAuthType is the handshake's client authentication of a
// tls.client_auth value.
func clientAuthType(auth string) tls.ClientAuthType {
	switch auth {
	case config.ClientAuthRequest:
		return tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// certificateEdge puts the identity of a call's client certificate into
// its context (clientcert.NewContext), where the decision (a route that
// requires a certificate, a certificate-bound token), the access log and
// the trace find it. The certificate is the one a trusted proxy passes in
// the configured header, verified here, or else the one the call's own
// TLS handshake verified.
type certificateEdge struct {
	next    http.Handler
	header  string         // the proxy's header; "" for none
	proxies []netip.Prefix // the peers whose header is believed
	roots   *tlsfiles.Pool // the CAs a header's certificate must chain to; nil: any
	now     func() time.Time
}

// certificateProblemKey carries why a header's certificate was not
// believed, for the refusal of a route that requires one.
type certificateProblemKey struct{}

// ServeHTTP serves r with its certificate identity in the context.
func (e *certificateEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ctx := e.context(r.Context(), r); ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	e.next.ServeHTTP(w, r)
}

// context returns ctx with the identity of r's certificate, or why the
// proxy's header was not believed; ctx itself when there is neither.
func (e *certificateEdge) context(ctx context.Context, r *http.Request) context.Context {
	switch id, problem := e.identity(r); {
	case id != nil:
		return clientcert.NewContext(ctx, id)
	case problem != "":
		return context.WithValue(ctx, certificateProblemKey{}, problem)
	}
	return ctx
}

// identity returns the call's certificate identity, or why the proxy's
// header was not believed.
func (e *certificateEdge) identity(r *http.Request) (*clientcert.Identity, string) {
	if e.header != "" {
		if values := r.Header.Values(e.header); len(values) > 0 && e.trusted(r.RemoteAddr) {
			return e.fromHeader(values)
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return clientcert.FromCertificate(r.TLS.VerifiedChains[0][0]), ""
	}
	return nil, ""
}

// trusted reports whether the TCP peer is a trusted proxy.
func (e *certificateEdge) trusted(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range e.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// fromHeader verifies the certificate of the proxy's header: against the
// client CAs when they are configured, and its validity period always.
func (e *certificateEdge) fromHeader(values []string) (*clientcert.Identity, string) {
	leaf, intermediates, err := clientcert.ParseHeader(values)
	if err != nil {
		return nil, "the " + e.header + " header: " + err.Error()
	}
	now := e.now()
	if e.roots == nil {
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return nil, "the certificate in " + e.header + " is expired or not yet valid"
		}
		return clientcert.FromCertificate(leaf), ""
	}
	opts := x509.VerifyOptions{
		Roots:         e.roots.CertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range intermediates {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, "the certificate in " + e.header + " is expired or not yet valid"
		}
		return nil, "the certificate in " + e.header + " is not verified: " + err.Error()
	}
	return clientcert.FromCertificate(leaf), ""
}

// requireCertificate is the gate of a route with client_certificate
// required: a call without a verified client certificate is refused with
// Unauthenticated, "client certificate required", before its token is
// looked at.
func requireCertificate(ctx context.Context, _ connect.Spec, _ connect.Peer, _ http.Header) (context.Context, error) {
	if _, ok := clientcert.FromContext(ctx); ok {
		return ctx, nil
	}
	msg := "client certificate required"
	if problem, ok := ctx.Value(certificateProblemKey{}).(string); ok {
		msg += ": " + problem
	}
	ce := connect.NewError(connect.CodeUnauthenticated, errors.New(msg))
	if d, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: ReasonCertificateRequired, Domain: authz.ErrorDomain}); err == nil {
		ce.AddDetail(d)
	}
	return ctx, ce
}

// edgeCertificates takes the certificate settings of the edge from cfg.
func (c *chain) edgeCertificates(cfg *config.Config, roots *tlsfiles.Pool) {
	t := cfg.TLS
	if !t.ClientCertificates() {
		return
	}
	c.certificates = &certificateEdge{header: t.ClientCertHeader, roots: roots, now: time.Now}
	if t.ClientCertHeader != "" {
		c.certificates.proxies = trustedProxies(cfg.RateLimit.TrustedProxies)
	}
}

// droppedHeaders are the request headers never forwarded: those always
// dropped, the configured sensitive ones and the proxy's certificate
// header, believed or not.
func droppedHeaders(cfg *config.Config) []string {
	h := append(alwaysDropped[:len(alwaysDropped):len(alwaysDropped)], cfg.Limits.SensitiveHeaders...)
	if cfg.TLS != nil && cfg.TLS.ClientCertHeader != "" {
		h = append(h, cfg.TLS.ClientCertHeader)
	}
	return h
}

// backendTLS returns the TLS configuration of a route's https backend: its
// CAs instead of the system's, and the client certificate the gateway
// presents, followed as its files change; nil for neither.
func (g *generation) backendTLS(route config.Route) (*tls.Config, error) {
	if route.CAFile == "" && route.ClientCertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if route.CAFile != "" {
		pool, err := tlsfiles.LoadPool([]string{route.CAFile})
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool.CertPool()
	}
	if route.ClientCertFile != "" {
		cert, err := tlsfiles.LoadKeyPair(route.ClientCertFile, route.ClientKeyFile, tlsfiles.WithLogger(g.logger))
		if err != nil {
			return nil, fmt.Errorf("client_cert_file: %w", err)
		}
		cfg.GetClientCertificate = cert.GetClientCertificate
	}
	return cfg, nil
}
