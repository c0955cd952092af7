package issuer

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway/clientcert"
)

// The client authentication methods of the token endpoint, as the
// registry's token_endpoint_auth_method and the metadata name them.
const (
	// AuthClientSecret is the default: a client secret, with HTTP Basic
	// or in the form (client_secret_basic or client_secret_post, RFC 6749
	// §2.3.1).
	AuthClientSecret = "client_secret_basic"
	// AuthTLSClient is RFC 8705 §2.1: a client certificate that chains to
	// the issuer's client CA ([WithMutualTLS]) and names the registered
	// subject DN, SAN URI or SAN DNS name.
	AuthTLSClient = "tls_client_auth"
	// AuthSelfSignedTLSClient is RFC 8705 §2.2: one of the certificates
	// registered for the client, compared byte for byte, with no CA.
	AuthSelfSignedTLSClient = "self_signed_tls_client_auth"
)

// mtlsConfig turns on certificate authentication and binding.
type mtlsConfig struct {
	roots *x509.CertPool // the client CA of tls_client_auth, or nil
}

// WithMutualTLS tells the issuer that it is served over TLS requesting
// client certificates ([TLSConfig]): clients registered with
// tls_client_auth or self_signed_tls_client_auth authenticate with their
// certificate (RFC 8705 §2), and a token issued over a connection with a
// client certificate is bound to it (cnf x5t#S256, RFC 8705 §3). The
// metadata says so. clientCA verifies the chains of tls_client_auth
// clients; with nil, only self-signed clients authenticate by
// certificate. Without this option the issuer ignores client
// certificates. Applies to New.
func WithMutualTLS(clientCA *x509.CertPool) Option {
	return optionFunc(func(c *config) { c.mtls = &mtlsConfig{roots: clientCA} })
}

// TLSConfig returns a TLS configuration for serving the issuer with
// [WithMutualTLS]: HTTP/2 and HTTP/1.1, TLS 1.2 or later, and a client
// certificate requested but not required, so that clients with a secret
// connect as before. The handshake proves that a client holds the key of
// the certificate it sends; the issuer checks the certificate itself
// (chain, subject, or registered copy) when the client authenticates with
// it. The request names no acceptable CAs, which would keep clients with
// self-signed certificates from sending them.
func TLSConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: certs,
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// credentials are how a request authenticates its client: a secret, or,
// with certificate, the TLS client certificate of the connection and the
// client_id of the form (RFC 8705 §2).
type credentials struct {
	id, secret  string
	certificate bool
}

// credentials finds a request's client credentials. With
// [WithMutualTLS], a client_id in the form with no secret anywhere is
// certificate authentication.
func (s *Server) credentials(r *http.Request, form url.Values) (credentials, *oauthError) {
	if s.cfg.mtls != nil && len(r.Header.Values("Authorization")) == 0 && form.Get("client_secret") == "" {
		if id := form.Get("client_id"); id != "" {
			return credentials{id: id, certificate: true}, nil
		}
		if peerCertificate(r) != nil {
			return credentials{}, errClient("a client certificate without client_id: name the client with client_id")
		}
	}
	id, secret, oerr := clientCredentials(r, form)
	return credentials{id: id, secret: secret}, oerr
}

// authenticateWith checks credentials.
func (s *Server) authenticateWith(r *http.Request, cr credentials) (*client, *oauthError) {
	if cr.certificate {
		return s.authenticateCertificate(r, cr.id)
	}
	return s.authenticate(r, cr.id, cr.secret)
}

// errNoCredentials answers a client_id without a secret or a
// certificate, whoever the client is.
var errNoCredentials = errClient("no client secret nor client certificate: public clients are not supported; authenticate with client_secret_basic, client_secret_post, or a TLS client certificate registered for the client")

// authenticateCertificate checks that the connection's client certificate
// authenticates the client id (RFC 8705 §2). An unknown client, a client
// with a secret and a certificate that does not match get the same
// answer, and count against the failure limits alike.
func (s *Server) authenticateCertificate(r *http.Request, id string) (*client, *oauthError) {
	leaf := peerCertificate(r)
	if leaf == nil {
		return nil, errNoCredentials
	}
	c := s.registry.Load().clients[id]
	now := s.cfg.now()
	idKey, ipKey := clientKey(id), addrKey(s.cfg.clientAddr(r))
	if wait := max(s.byClient.wait(idKey, now), s.byAddr.wait(ipKey, now)); wait > 0 {
		s.logger().Debug("issuer: too many failed authentications", "client_id", logID(id), "remote", r.RemoteAddr)
		return nil, &oauthError{status: http.StatusTooManyRequests, code: codeTemporarilyUnavailable,
			description: "too many failed authentications; retry later", retryAfter: wait}
	}
	var err error
	switch {
	case c == nil:
		err = errors.New("unknown client")
	case c.auth == AuthTLSClient:
		err = s.verifyTLSClient(c, r.TLS.PeerCertificates, now)
	case c.auth == AuthSelfSignedTLSClient:
		err = verifySelfSigned(c, leaf, now)
	default:
		err = errors.New("the client authenticates with a secret")
	}
	if err != nil {
		s.byClient.fail(idKey, now)
		s.byAddr.fail(ipKey, now)
		s.logger().Debug("issuer: client certificate authentication failed", "client_id", logID(id), "remote", r.RemoteAddr, "reason", err.Error())
		return nil, errAuthentication
	}
	return c, nil
}

// verifyTLSClient checks a tls_client_auth certificate: its chain ends at
// the client CA, it may authenticate TLS clients, and it names what the
// client registered.
func (s *Server) verifyTLSClient(c *client, peers []*x509.Certificate, now time.Time) error {
	roots := s.cfg.mtls.roots
	if roots == nil {
		s.logger().Error("issuer: a tls_client_auth client, and no client CA to verify its certificate", "client_id", c.id)
		return errors.New("no client CA")
	}
	inter := x509.NewCertPool()
	for _, p := range peers[1:] {
		inter.AddCert(p)
	}
	leaf := peers[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return err
	}
	switch {
	case c.subjectDN != "":
		if leaf.Subject.String() != c.subjectDN {
			return errors.New("subject DN differs")
		}
	case c.sanURI != "":
		if !slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == c.sanURI }) {
			return errors.New("no such SAN URI")
		}
	case c.sanDNS != "":
		if !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, c.sanDNS) }) {
			return errors.New("no such SAN DNS name")
		}
	default:
		return errors.New("nothing registered to match") // compile refuses it
	}
	return nil
}

// verifySelfSigned checks a self_signed_tls_client_auth certificate: one
// of those registered, byte for byte, within its validity.
func verifySelfSigned(c *client, leaf *x509.Certificate, now time.Time) error {
	i := slices.IndexFunc(c.certs, func(r *x509.Certificate) bool { return bytes.Equal(r.Raw, leaf.Raw) })
	switch {
	case i < 0:
		return errors.New("not a registered certificate")
	case now.Before(leaf.NotBefore) || now.After(leaf.NotAfter):
		return errors.New("registered certificate not valid now")
	}
	return nil
}

// peerCertificate returns the connection's client certificate, or nil.
func peerCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// confirmation is a token's cnf claim (RFC 7800).
type confirmation struct {
	// CertificateThumbprint binds the token to a client certificate (RFC
	// 8705 §3.1).
	CertificateThumbprint string `json:"x5t#S256,omitempty"`
	// JKT binds the token to a DPoP key (RFC 9449 §6.1).
	JKT string `json:"jkt,omitempty"`
}

// withKey returns c, or a new confirmation when c is nil, binding also to
// the DPoP key of thumbprint jkt.
func (c *confirmation) withKey(jkt string) *confirmation {
	if c == nil {
		c = &confirmation{}
	}
	c.JKT = jkt
	return c
}

// certificateBinding returns the cnf of a token issued to c (or to no
// registered client, when nil) over r's connection: bound to its client certificate when there is one (RFC
// 8705 §3). The handshake proved the client holds the certificate's key,
// which is all binding needs: a client with a secret and a self-issued
// certificate gets a bound token too. A client registered with
// tls_client_certificate_bound_access_tokens and no certificate is
// refused with invalid_request: it did authenticate, so invalid_client
// would have it look for a fault in its credentials, when what the
// request lacks is the certificate its tokens must be bound to.
func (s *Server) certificateBinding(r *http.Request, c *client) (*confirmation, *oauthError) {
	if s.cfg.mtls != nil {
		if leaf := peerCertificate(r); leaf != nil {
			return &confirmation{CertificateThumbprint: clientcert.Thumbprint(leaf.Raw)}, nil
		}
	}
	if c != nil && c.boundTokens {
		return nil, errRequest("client " + quote(c.id) + " gets only certificate-bound tokens (tls_client_certificate_bound_access_tokens); request them over TLS with its client certificate")
	}
	return nil, nil
}
