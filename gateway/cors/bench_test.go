package cors_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/gateway/cors"
)

// nop answers nothing: what the benchmarks measure is the CORS layer.
type nop struct{}

func (nop) ServeHTTP(http.ResponseWriter, *http.Request) {}

// headerWriter is a ResponseWriter whose header map is reused.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}

func BenchmarkWrap(b *testing.B) {
	resolve := func(_, path string) (string, bool) {
		if strings.HasPrefix(path, "/v1/orders/") {
			return "/example.orders.v1.OrdersService/", true
		}
		return "", false
	}
	c, err := cors.New(cors.Policy{
		AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"},
		MaxAge:         10 * time.Minute,
	}, map[string]cors.Policy{
		"/example.orders.v1.OrdersService/": {AllowedOrigins: []string{"https://shop.example.com"}},
	}, cors.WithRouteResolver(resolve))
	if err != nil {
		b.Fatal(err)
	}
	h := c.Wrap(nop{})
	rpc := "/example.licensing.v1.LicensingService/ListRequirements"
	for _, bc := range []struct {
		name, method, path string
		header             http.Header
		want               string // Access-Control-Allow-Origin
	}{
		{"server call", "POST", rpc, http.Header{}, ""},
		{"exact origin", "POST", rpc, http.Header{"Origin": {"https://app.example.com"}}, "https://app.example.com"},
		{"pattern origin", "POST", rpc, http.Header{"Origin": {"https://a.example.org"}}, "https://a.example.org"},
		{"other origin", "POST", rpc, http.Header{"Origin": {"https://evil.example.net"}}, ""},
		{"route policy", "POST", "/example.orders.v1.OrdersService/GetOrder", http.Header{"Origin": {"https://shop.example.com"}}, "https://shop.example.com"},
		{"REST path, resolved", "GET", "/v1/orders/ord-0001", http.Header{"Origin": {"https://shop.example.com"}}, "https://shop.example.com"},
		{"preflight", "OPTIONS", rpc, http.Header{
			"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"},
			"Access-Control-Request-Headers": {"authorization,connect-protocol-version,content-type"},
		}, "https://app.example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &http.Request{Method: bc.method, URL: &url.URL{Path: bc.path}, Header: bc.header}
			w := &headerWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if got := w.h.Get("Access-Control-Allow-Origin"); got != bc.want {
				b.Fatalf("Access-Control-Allow-Origin %q, want %q", got, bc.want)
			}
		})
	}
}
