package clientcert_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/clientcert"
	"github.com/portcullis/portcullis/internal/certtest"
)

// TestParseHeader reads the header forms proxies send, and refuses
// malformed ones.
func TestParseHeader(t *testing.T) {
	t.Parallel()
	ca := certtest.NewCA(t, "CA")
	leaf := ca.Leaf(t, certtest.Spec{CommonName: "billing", URIs: []string{"spiffe://example.org/billing"}})
	other := ca.Leaf(t, certtest.Spec{CommonName: "proxy"})
	enc := strings.ReplaceAll(url.QueryEscape(string(leaf.CertPEM())), "+", "%20") // Envoy's form: %20, %2B, %0A
	chain := url.QueryEscape(string(append(leaf.CertPEM(), ca.PEM()...)))
	sum := sha256.Sum256(leaf.Cert.Raw)
	hash := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name   string
		values []string
		chain  int
		err    string
	}{
		{"xfcc", []string{`By=spiffe://gw;Hash=` + hash + `;Cert="` + enc + `";Subject="CN=billing,O=x";URI=spiffe://example.org/billing;DNS=a;DNS=b`}, 0, ""},
		{"xfcc chain", []string{`Hash=` + hash + `;Chain="` + chain + `"`}, 1, ""},
		{"xfcc last element wins", []string{`Cert="` + url.QueryEscape(string(other.CertPEM())) + `";Subject="CN=proxy"`, `Cert="` + enc + `"`}, 0, ""},
		{"pem form-encoded", []string{url.QueryEscape(string(leaf.CertPEM()))}, 0, ""},
		{"pem url-encoded", []string{url.PathEscape(string(leaf.CertPEM()))}, 0, ""},
		{"pem plain with chain", []string{string(leaf.CertPEM()) + string(ca.PEM())}, 1, ""},
		{"hash of another", []string{`Hash=00ff;Cert="` + enc + `"`}, 0, "Hash is not the certificate's"},
		{"no cert", []string{`Hash=` + hash + `;Subject="CN=billing"`}, 0, "no Cert is given"},
		{"open quote", []string{`Cert="` + enc}, 0, "a quote is not closed"},
		{"not key=value", []string{`Cert`}, 0, "is not key=value"},
		{"garbage pem", []string{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, 0, "does not parse"},
		{"a key, not a certificate", []string{url.PathEscape(string(leaf.KeyPEM(t)))}, 0, "PEM PRIVATE KEY, not a certificate"},
		{"empty", []string{" "}, 0, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, intermediates, err := clientcert.ParseHeader(tc.values)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(leaf.Cert) || len(intermediates) != tc.chain {
				t.Errorf("leaf %s, %d intermediates; want billing, %d", got.Subject, len(intermediates), tc.chain)
			}
		})
	}
}
