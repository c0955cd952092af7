package tlsfiles

import (
	"crypto/x509"
	"fmt"
)

// Pool is a set of CA certificates read from PEM files, read again when
// one changes.
type Pool struct {
	w watched[*x509.CertPool]
}

// LoadPool reads the CA certificates of files. It fails when a file cannot
// be read or holds no PEM certificate.
func LoadPool(files []string, opts ...Option) (*Pool, error) {
	if len(files) == 0 {
		return nil, errNoFiles
	}
	p := &Pool{w: watched[*x509.CertPool]{
		files: files,
		what:  "CA bundle",
		o:     newOptions(opts),
		parse: func(data [][]byte) (*x509.CertPool, error) {
			pool := x509.NewCertPool()
			for i, pem := range data {
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("%s holds no PEM certificate", files[i])
				}
			}
			return pool, nil
		},
	}}
	if err := p.w.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// CertPool returns the current CAs. The pool must not be changed.
func (p *Pool) CertPool() *x509.CertPool { return p.w.get().value }
