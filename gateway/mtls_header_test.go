package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/certtest"
)

// xfcc is the x-forwarded-client-cert value Envoy sends for a client of
// cert, with the certificate's hash, or another when wrongHash.
func xfcc(cert *certtest.Leaf, wrongHash bool) string {
	enc := strings.ReplaceAll(url.QueryEscape(string(cert.CertPEM())), "+", "%20")
	sum := sha256.Sum256(cert.Cert.Raw)
	if wrongHash {
		sum[0]++
	}
	return `By=spiffe://example.org/envoy;Hash=` + hex.EncodeToString(sum[:]) + `;Cert="` + enc + `";Subject="` + cert.Cert.Subject.String() + `";URI=spiffe://example.org/forged`
}

// withHeader sends header: value on every request.
type withHeader struct {
	header, value string
	base          http.RoundTripper
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.header, h.value)
	return h.base.RoundTrip(r)
}

// TestClientCertHeader runs the gateway in cleartext behind a proxy that
// terminates TLS and passes the client's certificate in
// x-forwarded-client-cert. From a trusted proxy the header is believed,
// once verified against the client CAs; from any other peer it is ignored.
// Either way, no backend sees it.
func TestClientCertHeader(t *testing.T) {
	t.Parallel()
	f := newMTLSFixture(t)
	var leaked atomic.Int64 // calls on which a backend saw the header
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Forwarded-Client-Cert") != "" {
				leaked.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
	section := func(proxies string) string {
		return fmt.Sprintf("tls: {client_cert_header: x-forwarded-client-cert, client_ca_files: [%q]}\nrate_limit: {trusted_proxies: [%s]}\n", f.clientCAFile, proxies)
	}
	trusted := startTLSGateway(t, section("127.0.0.1/32")+f.routes(t, wrap))
	untrusted := startTLSGateway(t, section("10.0.0.0/8")+f.routes(t, wrap))
	ctx := context.Background()
	bound, bearerTok := f.token(f.billing), f.token(nil)
	clients := func(g *tlsGateway, tok, header string) (licensingv1connect.LicensingServiceClient, ordersv1connect.OrdersServiceClient) {
		var rt http.RoundTripper = bearer{tok: tok, base: http2Cleartext(t)}
		if header != "" {
			rt = withHeader{"X-Forwarded-Client-Cert", header, rt}
		}
		hc := &http.Client{Transport: rt}
		return licensingv1connect.NewLicensingServiceClient(hc, g.url, connect.WithGRPC()), ordersv1connect.NewOrdersServiceClient(hc, g.url, connect.WithGRPC())
	}
	refused := func(t *testing.T, what string, err error, want string) {
		t.Helper()
		if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %v, want Unauthenticated: %s", what, err, want)
		}
	}

	t.Run("trusted proxy", func(t *testing.T) {
		lic, _ := clients(trusted, bound, xfcc(f.billing, false))
		if err := listRequirements(ctx, lic); err != nil {
			t.Errorf("bound token, its certificate in XFCC: %v", err)
		}
		_, ord := clients(trusted, bearerTok, xfcc(f.billing, false))
		passed(t, "required route, certificate in XFCC", getOrder(ctx, ord))
		_, ord = clients(trusted, bearerTok, url.PathEscape(string(f.billing.CertPEM())))
		passed(t, "required route, certificate in a URL-encoded PEM", getOrder(ctx, ord))
		_, ord = clients(trusted, bearerTok, "")
		refused(t, "required route, no header", getOrder(ctx, ord), "client certificate required")

		lic, _ = clients(trusted, bound, xfcc(f.second, false))
		refused(t, "bound token, another certificate in XFCC", listRequirements(ctx, lic), "bound to another client certificate")
		for _, tc := range []struct{ name, header, want string }{
			{"expired", xfcc(f.expired, false), "client certificate required: the certificate in x-forwarded-client-cert is expired or not yet valid"},
			{"another CA", xfcc(f.foreign, false), "client certificate required: the certificate in x-forwarded-client-cert is not verified"},
			{"wrong hash", xfcc(f.billing, true), "Hash is not the certificate's"},
			{"garbage", "Cert=%%%", "client certificate required: the x-forwarded-client-cert header: Cert: the certificate is not URL-encoded PEM"},
		} {
			_, ord := clients(trusted, bearerTok, tc.header)
			refused(t, tc.name, getOrder(ctx, ord), tc.want)
		}
	})

	t.Run("untrusted peer", func(t *testing.T) {
		lic, ord := clients(untrusted, bound, xfcc(f.billing, false))
		refused(t, "bound token, certificate in an untrusted XFCC", listRequirements(ctx, lic), "the call has none")
		refused(t, "required route, certificate in an untrusted XFCC", getOrder(ctx, ord), "client certificate required")
		if err := getOrder(ctx, ord); err != nil && strings.Contains(err.Error(), "X-Forwarded-Client-Cert") {
			t.Errorf("the refusal speaks of the untrusted header: %v", err)
		}
		lic, _ = clients(untrusted, bearerTok, xfcc(f.billing, false))
		if err := listRequirements(ctx, lic); err != nil {
			t.Errorf("bearer token with an untrusted XFCC: %v", err)
		}
	})
	if n := leaked.Load(); n != 0 {
		t.Errorf("backends saw x-forwarded-client-cert on %d calls", n)
	}
}
