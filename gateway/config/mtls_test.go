package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestMutualTLSSettings reads the client certificate settings of the
// listener and the routes, and names each mistake in them with its line
// and column.
func TestMutualTLSSettings(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"cert.pem", "key.pem", "ca.pem", "gw.pem", "gw-key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	cfg, err := config.Parse("ok.yaml", []byte(`
descriptors: {compiled_in: true}
tls: {cert_file: cert.pem, key_file: key.pem, client_ca_files: [ca.pem], client_auth: request, client_cert_header: x-forwarded-client-cert}
rate_limit: {trusted_proxies: [10.0.0.0/8]}
routes:
  - {service: example.licensing.v1.LicensingService, backend: "https://lic:1", client_certificate: required, client_cert_file: gw.pem, client_key_file: gw-key.pem}
  - {service: example.orders.v1.OrdersService, backend: "http://ord:1"}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tls, r := cfg.TLS, cfg.Routes; !tls.Serves() || tls.ClientAuth != config.ClientAuthRequest || !tls.ClientCertificates() ||
		r[0].ClientCertificate != config.ClientCertificateRequired || r[1].ClientCertificate != "optional" || r[0].ClientKeyFile != "gw-key.pem" {
		t.Errorf("tls %+v, routes %+v", tls, r)
	}
	cfg, err = config.Parse("lb.yaml", []byte(`
descriptors: {compiled_in: true}
tls: {client_cert_header: x-forwarded-client-cert}
rate_limit: {trusted_proxies: [10.0.0.0/8]}
routes: [{service: example.licensing.v1.LicensingService, backend: "http://lic:1", client_certificate: required}]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.Serves() || cfg.TLS.ClientAuth != config.ClientAuthNone {
		t.Errorf("behind a proxy: serves TLS %v, client_auth %q; want cleartext, none", cfg.TLS.Serves(), cfg.TLS.ClientAuth)
	}

	for _, tc := range []struct{ name, tls, route, want string }{
		{"unknown client_auth", "{cert_file: cert.pem, key_file: key.pem, client_auth: optional}", "", `3:60: tls.client_auth: "optional" is not none, request or require`},
		{"require without CAs", "{cert_file: cert.pem, key_file: key.pem, client_auth: require}", "", "3:60: tls.client_auth: is require, but client_ca_files is empty: no client certificate could be verified"},
		{"request without a certificate", "{client_ca_files: [ca.pem], client_auth: request}", "", "3:47: tls.client_auth: is request, but the listener serves no TLS: set cert_file and key_file"},
		{"missing CA file", "{cert_file: cert.pem, key_file: key.pem, client_ca_files: [nope.pem], client_auth: request}", "", `3:65: tls.client_ca_files[0]: "nope.pem": no such file or directory`},
		{"key without certificate", "{key_file: key.pem}", "", "3:6: tls.cert_file: is required"},
		{"header without proxies", "{client_cert_header: x-forwarded-client-cert}", "", "3:27: tls.client_cert_header: is set, but rate_limit.trusted_proxies is empty: no peer's header would be believed"},
		{"header not a name", "{client_cert_header: \"x client\"}", "", `3:27: tls.client_cert_header: "x client" is not a header name`},
		{"required, nothing presents one", "{cert_file: cert.pem, key_file: key.pem}", ", client_certificate: required", "5:99: routes[0].client_certificate: is required, but no call can present one: set tls.client_auth (request or require) or tls.client_cert_header"},
		{"unknown client_certificate", "{cert_file: cert.pem, key_file: key.pem}", ", client_certificate: always", `5:99: routes[0].client_certificate: "always" is not optional or required`},
		{"client cert to cleartext", "{cert_file: cert.pem, key_file: key.pem}", ", client_cert_file: gw.pem, client_key_file: gw-key.pem", "5:97: routes[0].client_cert_file: is set, but the backend is not https"},
		{"client key missing", "{cert_file: cert.pem, key_file: key.pem}", ", client_cert_file: gw.pem", "routes[0].client_key_file: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("bad.yaml", []byte(`
descriptors: {compiled_in: true}
tls: `+tc.tls+`
routes:
  - {service: example.licensing.v1.LicensingService, backend: "http://lic:1"`+tc.route+`}
`), env(nil))
			got := placed(t, err)
			if !slices.ContainsFunc(got, func(m string) bool { return strings.HasSuffix(m, tc.want) }) {
				t.Errorf("mistakes %q, want %q", got, tc.want)
			}
		})
	}
}

// placed returns the mistakes of err as "line:column: path: message".
func placed(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("Parse accepted the file")
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, strings.TrimPrefix(strings.TrimSpace(line), "bad.yaml:"))
	}
	return out
}
