package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
)

// ServerConfig returns a listener's configuration: base with cert's
// current certificate and, unless clientCAs is nil, client certificates
// verified against clientCAs' current CAs as auth says. Each handshake
// gets the configuration of the files' state then; a configuration is
// built once per change of either, not per handshake.
func ServerConfig(base *tls.Config, cert *KeyPair, clientCAs *Pool, auth tls.ClientAuthType) *tls.Config {
	s := &server{base: base.Clone(), cert: cert, clientCAs: clientCAs, auth: auth}
	if clientCAs == nil {
		s.auth = tls.NoClientCert
	}
	cfg := base.Clone()
	cfg.GetCertificate = cert.GetCertificate
	cfg.GetConfigForClient = s.configForClient
	return cfg
}

type server struct {
	base      *tls.Config
	cert      *KeyPair
	clientCAs *Pool
	auth      tls.ClientAuthType
	built     atomic.Pointer[built]
}

// built is the configuration of one state of the files.
type built struct {
	cert *loaded[*tls.Certificate]
	cas  *loaded[*x509.CertPool]
	cfg  *tls.Config
}

func (s *server) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	cert := s.cert.w.get()
	var cas *loaded[*x509.CertPool]
	if s.clientCAs != nil {
		cas = s.clientCAs.w.get()
	}
	if b := s.built.Load(); b != nil && b.cert == cert && b.cas == cas {
		return b.cfg, nil
	}
	cfg := s.base.Clone()
	cfg.Certificates = []tls.Certificate{*cert.value}
	cfg.ClientAuth = s.auth
	if cas != nil {
		cfg.ClientCAs = cas.value
	}
	s.built.Store(&built{cert: cert, cas: cas, cfg: cfg})
	return cfg, nil
}
