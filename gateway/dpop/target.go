package dpop

import (
	"context"
	"net/http"
	"strings"
)

// Target is the method and URL of the HTTP request a call came in, as
// the client sent it: what its proof's htm and htu must name.
type Target struct {
	// Method is the HTTP method, such as "POST".
	Method string
	// URL is scheme, host and path, without query: "https://api.example.com/pkg.Service/Method".
	URL string
}

type targetKey struct{}

// NewContext returns ctx carrying t.
func NewContext(ctx context.Context, t *Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// FromContext returns the target [RecordTarget] put in ctx, or nil.
func FromContext(ctx context.Context) *Target {
	t, _ := ctx.Value(targetKey{}).(*Target)
	return t
}

// TargetOf returns the target of r: https when it came over TLS, else
// http (h2c or HTTP/1.1), its Host (HTTP/2's :authority) and the path it
// was sent with, before any rewriting.
func TargetOf(r *http.Request) *Target {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.RequestURI
	if path == "" || path[0] != '/' {
		path = r.URL.EscapedPath()
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	u, ok := normalizeURL(scheme + "://" + r.Host + path)
	if !ok {
		u = ""
	}
	return &Target{Method: r.Method, URL: u}
}

// RecordTarget wraps next so that each request bearing a DPoP header
// carries its [Target] in its context, for a verifier that sees only
// headers, such as a connect request gate. It must wrap next outside
// anything that rewrites the request (REST transcoding): the proof names
// the URL the client used. Requests without a DPoP header pass untouched,
// at no cost.
func RecordTarget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Dpop"]; ok {
			r = r.WithContext(TargetContext(r.Context(), r))
		}
		next.ServeHTTP(w, r)
	})
}

// TargetContext returns ctx carrying r's [Target] when r bears a DPoP
// header: what [RecordTarget] gives the requests it passes on, for a
// server that is not an http.Handler.
func TargetContext(ctx context.Context, r *http.Request) context.Context {
	if _, ok := r.Header["Dpop"]; !ok {
		return ctx
	}
	return NewContext(ctx, TargetOf(r))
}
