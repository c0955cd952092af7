package tlsfiles

import (
	"crypto/tls"
	"fmt"
)

// KeyPair is a certificate chain and its private key, read from two PEM
// files and read again when either changes.
type KeyPair struct {
	w watched[*tls.Certificate]
}

// LoadKeyPair reads the certificate chain in certFile (leaf first) and its
// key in keyFile. It fails when either cannot be read or parsed, or when
// they do not match.
func LoadKeyPair(certFile, keyFile string, opts ...Option) (*KeyPair, error) {
	k := &KeyPair{w: watched[*tls.Certificate]{
		files: []string{certFile, keyFile},
		what:  "certificate",
		o:     newOptions(opts),
		parse: func(data [][]byte) (*tls.Certificate, error) {
			// The errors of X509KeyPair describe, never quote, the key.
			c, err := tls.X509KeyPair(data[0], data[1])
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", certFile, keyFile, err)
			}
			return &c, nil
		},
	}}
	if err := k.w.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// Certificate returns the current certificate. Its Leaf is parsed.
func (k *KeyPair) Certificate() *tls.Certificate { return k.w.get().value }

// GetCertificate is a tls.Config.GetCertificate that serves the current
// certificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate that presents
// the current certificate to every server that asks for one.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}
