package config

import (
	"fmt"
	"strings"
)

// The values of [TLS.ClientAuth].
const (
	// ClientAuthNone asks for no client certificate in the handshake.
	ClientAuthNone = "none"
	// ClientAuthRequest asks for one and verifies it when presented.
	ClientAuthRequest = "request"
	// ClientAuthRequire fails the handshake without a valid one.
	ClientAuthRequire = "require"
)

// ClientCertificateRequired is the [Route.ClientCertificate] of routes
// whose calls must come with a verified client certificate.
const ClientCertificateRequired = "required"

// Serves reports whether the main listener serves TLS: t names a
// certificate. A nil t serves cleartext.
func (t *TLS) Serves() bool {
	return t != nil && (t.CertFile != "" || t.KeyFile != "")
}

// ClientCertificates reports whether calls can prove a client
// certificate at all: in the handshake, or in a trusted proxy's header.
func (t *TLS) ClientCertificates() bool {
	return t != nil && ((t.Serves() && (t.ClientAuth == ClientAuthRequest || t.ClientAuth == ClientAuthRequire)) || t.ClientCertHeader != "")
}

func (t *TLS) validate(v *validator, trustedProxies []string) {
	if t == nil {
		return
	}
	if t.Serves() {
		v.file("tls.cert_file", t.CertFile)
		v.file("tls.key_file", t.KeyFile)
	}
	for i, f := range t.ClientCAFiles {
		v.file(fmt.Sprintf("tls.client_ca_files[%d]", i), f)
	}
	switch t.ClientAuth {
	case ClientAuthNone:
	case ClientAuthRequest, ClientAuthRequire:
		if !t.Serves() {
			v.add("tls.client_auth", "is %s, but the listener serves no TLS: set cert_file and key_file", t.ClientAuth)
		}
		if len(t.ClientCAFiles) == 0 {
			v.add("tls.client_auth", "is %s, but client_ca_files is empty: no client certificate could be verified", t.ClientAuth)
		}
	default:
		v.add("tls.client_auth", "%q is not none, request or require", t.ClientAuth)
	}
	if h := t.ClientCertHeader; h != "" {
		if !validHeaderName(h) {
			v.add("tls.client_cert_header", "%q is not a header name", h)
		}
		if len(trustedProxies) == 0 {
			v.add("tls.client_cert_header", "is set, but rate_limit.trusted_proxies is empty: no peer's header would be believed")
		}
	}
}

func (r *Route) validateClientCertificates(v *validator, path string, t *TLS) {
	switch r.ClientCertificate {
	case "optional":
	case ClientCertificateRequired:
		if !t.ClientCertificates() {
			v.add(path+".client_certificate", "is required, but no call can present one: set tls.client_auth (request or require) or tls.client_cert_header")
		}
	default:
		v.add(path+".client_certificate", "%q is not optional or required", r.ClientCertificate)
	}
	if r.ClientCertFile == "" && r.ClientKeyFile == "" {
		return
	}
	if !strings.HasPrefix(r.Backend, "https://") {
		v.add(path+".client_cert_file", "is set, but the backend is not https")
	}
	v.file(path+".client_cert_file", r.ClientCertFile)
	v.file(path+".client_key_file", r.ClientKeyFile)
}

// validHeaderName reports whether h is an HTTP field name (RFC 9110 token).
func validHeaderName(h string) bool {
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return h != ""
}
