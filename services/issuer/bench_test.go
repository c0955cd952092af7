package issuer_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// BenchmarkTokenEndpoint measures a whole token request in process: parse,
// authenticate, sign. "cached" is a client fetching tokens again within
// the verification cache's TTL; "argon2id" verifies the secret every time
// with the default (production) parameters.
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []issuer.Option
	}{
		{"cached", nil},
		{"argon2id", []issuer.Option{issuer.WithHasher(issuer.DefaultHasher()), issuer.WithVerificationCache(0)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			iss := issuertest.Start(b, newCatalog(b), bc.opts...)
			secret, err := issuer.AddClient(iss.RegistryPath, newCatalog(b), issuer.Client{ID: "reader", Grants: []string{"LIC.READ_ORDERS", "ORD.READ"}, Tier: "pro"})
			if err != nil {
				b.Fatal(err)
			}
			if err := iss.Server.Reload(); err != nil {
				b.Fatal(err)
			}
			h := iss.Server.Handler()
			header := form("reader", secret)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", issuer.TokenPath, strings.NewReader("grant_type=client_credentials"))
				req.Header = header
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
