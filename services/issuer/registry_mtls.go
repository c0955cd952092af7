package issuer

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	jwkcert "github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// certificateEntry is the RFC 8705 part of a registry client, with the
// names of RFC 8705 §2.1.2 and §2.2.2 (as dynamic client registration
// has them):
//
//   - id: billing-sync
//     grants: [LIC.READ_ORDERS]
//     token_endpoint_auth_method: tls_client_auth
//     tls_client_auth_san_uri: spiffe://example.com/billing
//     tls_client_certificate_bound_access_tokens: true
//   - id: edge-device
//     grants: [ORD.READ]
//     token_endpoint_auth_method: self_signed_tls_client_auth
//     jwks: {keys: [{kty: EC, crv: P-256, x: ..., y: ..., x5c: [MIIB...]}]}
//
// A self-signed client's certificates are registered as a JWK set whose
// keys carry them in x5c, as RFC 8705 §2.2.2 registers them, rather than
// as a PEM file beside the registry: the registry stays one file, read,
// watched and rewritten atomically as a whole, and the form is the one a
// client's own registration metadata uses. Each key must be the public
// key of its x5c certificate.
type certificateEntry struct {
	Method                 string     `json:"token_endpoint_auth_method,omitempty" yaml:"token_endpoint_auth_method,omitempty"`
	SubjectDN              string     `json:"tls_client_auth_subject_dn,omitempty" yaml:"tls_client_auth_subject_dn,omitempty"`
	SANURI                 string     `json:"tls_client_auth_san_uri,omitempty" yaml:"tls_client_auth_san_uri,omitempty"`
	SANDNS                 string     `json:"tls_client_auth_san_dns,omitempty" yaml:"tls_client_auth_san_dns,omitempty"`
	JWKS                   *jwksValue `json:"jwks,omitempty" yaml:"jwks,omitempty"`
	CertificateBoundTokens bool       `json:"tls_client_certificate_bound_access_tokens,omitempty" yaml:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// jwksValue is a JWK set in the registry, kept as read.
type jwksValue struct{ raw json.RawMessage }

func (j *jwksValue) UnmarshalJSON(b []byte) error {
	j.raw = append(json.RawMessage(nil), b...)
	return nil
}

func (j jwksValue) MarshalYAML() (any, error) {
	var v any
	err := json.Unmarshal(j.raw, &v)
	return v, err
}

// compiledCertificate is a certificateEntry checked.
type compiledCertificate struct {
	auth                      string
	subjectDN, sanURI, sanDNS string
	certs                     []*x509.Certificate
	boundTokens               bool
}

// compile checks the entry, secretHash being the client's.
func (e certificateEntry) compile(secretHash string) (compiledCertificate, error) {
	c := compiledCertificate{auth: e.Method, subjectDN: e.SubjectDN, sanURI: e.SANURI, sanDNS: e.SANDNS, boundTokens: e.CertificateBoundTokens}
	named := 0
	for _, v := range []string{e.SubjectDN, e.SANURI, e.SANDNS} {
		if v != "" {
			named++
		}
	}
	switch e.Method {
	case "", AuthClientSecret, "client_secret_post":
		c.auth = AuthClientSecret
		if named > 0 || e.JWKS != nil {
			return c, errors.New("tls_client_auth_* and jwks need token_endpoint_auth_method tls_client_auth or self_signed_tls_client_auth")
		}
		return c, nil
	case AuthTLSClient:
		if named != 1 {
			return c, errors.New("tls_client_auth needs exactly one of tls_client_auth_subject_dn, tls_client_auth_san_uri and tls_client_auth_san_dns")
		}
		if e.JWKS != nil {
			return c, errors.New("jwks belongs to self_signed_tls_client_auth, not tls_client_auth")
		}
		if e.SANURI != "" {
			if u, err := url.Parse(e.SANURI); err != nil || !u.IsAbs() {
				return c, fmt.Errorf("tls_client_auth_san_uri %q is not an absolute URI", e.SANURI)
			}
		}
	case AuthSelfSignedTLSClient:
		if named > 0 {
			return c, errors.New("self_signed_tls_client_auth matches registered certificates (jwks), not tls_client_auth_*")
		}
		if e.JWKS == nil {
			return c, errors.New("self_signed_tls_client_auth needs jwks: keys whose x5c holds the client's certificates")
		}
		certs, err := jwksCertificates(e.JWKS.raw)
		if err != nil {
			return c, fmt.Errorf("jwks: %w", err)
		}
		c.certs = certs
	default:
		return c, fmt.Errorf("token_endpoint_auth_method %q is not client_secret_basic, client_secret_post, tls_client_auth or self_signed_tls_client_auth", e.Method)
	}
	if secretHash != "" {
		return c, fmt.Errorf("a %s client authenticates with its certificate, and has no secret_hash", e.Method)
	}
	return c, nil
}

// jwksCertificates returns the certificates in the x5c of each key of a
// JWK set: one each (a self-signed certificate has no chain), whose
// public key is the JWK's.
func jwksCertificates(raw []byte) ([]*x509.Certificate, error) {
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, err
	}
	if set.Len() == 0 {
		return nil, errors.New("no key")
	}
	var certs []*x509.Certificate
	for i := range set.Len() {
		k, _ := set.Key(i)
		chain := k.X509CertChain()
		if chain == nil || chain.Len() != 1 {
			return nil, fmt.Errorf("key #%d: x5c must hold exactly one certificate", i+1)
		}
		b64, _ := chain.Get(0)
		der, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil {
			return nil, fmt.Errorf("key #%d: x5c is not base64 DER", i+1)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("key #%d: x5c: %w", i+1, err)
		}
		certKey, err := jwk.FromRaw(cert.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("key #%d: x5c: %w", i+1, err)
		}
		public, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("key #%d: %w", i+1, err)
		}
		if !sameKey(public, certKey) {
			return nil, fmt.Errorf("key #%d is not the public key of its x5c certificate", i+1)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// sameKey compares two public keys by their RFC 7638 thumbprints.
func sameKey(a, b jwk.Key) bool {
	ta, err1 := a.Thumbprint(crypto.SHA256)
	tb, err2 := b.Thumbprint(crypto.SHA256)
	return err1 == nil && err2 == nil && string(ta) == string(tb)
}

// newCertificateEntry is the registry form of c's certificate
// authentication.
func newCertificateEntry(c Client) (certificateEntry, error) {
	a := c.CertificateAuth
	e := certificateEntry{Method: a.Method(), SubjectDN: a.SubjectDN, SANURI: a.SANURI, SANDNS: a.SANDNS, CertificateBoundTokens: c.CertificateBoundTokens}
	if len(a.Certificates) > 0 {
		set := jwk.NewSet()
		for _, cert := range a.Certificates {
			k, err := jwk.FromRaw(cert.PublicKey)
			if err != nil {
				return e, fmt.Errorf("certificate %s: %w", cert.Subject, err)
			}
			var chain jwkcert.Chain
			if err := chain.Add([]byte(base64.StdEncoding.EncodeToString(cert.Raw))); err != nil {
				return e, err
			}
			if err := k.Set(jwk.X509CertChainKey, &chain); err != nil {
				return e, err
			}
			set.AddKey(k)
		}
		raw, err := json.Marshal(set)
		if err != nil {
			return e, err
		}
		e.JWKS = &jwksValue{raw: raw}
	}
	if _, err := e.compile(""); err != nil {
		return e, err
	}
	return e, nil
}

// public is the entry as [Client] has it.
func (e certificateEntry) public() (CertificateAuth, bool) {
	a := CertificateAuth{SubjectDN: e.SubjectDN, SANURI: e.SANURI, SANDNS: e.SANDNS}
	if e.JWKS != nil {
		a.Certificates, _ = jwksCertificates(e.JWKS.raw)
	}
	return a, e.CertificateBoundTokens
}
