// Package clientcert carries the client certificate of a call, as the
// gateway's edge learnt it (from its own mutual TLS handshake, or from a
// trusted proxy's header), to the decision, the access log and the trace.
// It holds the certificate's identity and thumbprint, never the whole
// certificate, so that nothing downstream can log it.
package clientcert

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"time"
)

// Identity is what a call's client certificate says of its holder.
type Identity struct {
	// Subject is the certificate's subject, in RFC 2253 form
	// ("CN=billing,O=Example").
	Subject string
	// URIs are its URI subject alternative names, such as SPIFFE IDs.
	URIs []string
	// DNSNames are its DNS subject alternative names.
	DNSNames []string
	// Thumbprint is the base64url (unpadded) SHA-256 of the certificate's
	// DER: what an RFC 8705 certificate-bound token's cnf.x5t#S256 names.
	Thumbprint string
	// NotAfter is when the certificate expires.
	NotAfter time.Time
}

// FromCertificate returns the identity of a verified certificate.
func FromCertificate(c *x509.Certificate) *Identity {
	id := &Identity{
		Subject:    c.Subject.String(),
		DNSNames:   c.DNSNames,
		Thumbprint: Thumbprint(c.Raw),
		NotAfter:   c.NotAfter,
	}
	for _, u := range c.URIs {
		id.URIs = append(id.URIs, u.String())
	}
	return id
}

// Thumbprint returns the x5t#S256 of a certificate's DER (RFC 8705
// §3.1): base64url of its SHA-256, without padding.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type contextKey struct{}

// NewContext returns a copy of ctx that carries id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the client certificate identity in ctx: present only
// when the call came with a verified client certificate.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(*Identity)
	return id, ok && id != nil
}
