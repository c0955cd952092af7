package webclient

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
)

//go:embed static/index.html static/admin.html static/style.css dist/app.js dist/admin.js
var files embed.FS

var (
	page      = template.Must(template.ParseFS(files, "static/index.html"))
	adminPage = template.Must(template.ParseFS(files, "static/admin.html"))
)

// Config says whom the page calls.
type Config struct {
	// GatewayURL is the gateway's base URL, such as
	// "http://127.0.0.1:8080". Empty means the page's own origin.
	GatewayURL string
	// IssuerURL is where the page reaches the token issuer, usually its
	// issuer URL, such as "http://127.0.0.1:8081": the page asks
	// IssuerURL + /oauth2/token for tokens. Empty means the page's own
	// origin.
	IssuerURL string
	// AdminURL is the base URL of the token issuer's administration
	// service (portcullis.admin.v1.ClientAdminService), which the
	// provisioning page calls. Empty means IssuerURL: an issuer started
	// with issuer.WithAdmin serves it under its issuer URL.
	AdminURL string
}

// Handler serves the calling page at /, with its script /app.js; the
// provisioning page at /admin.html, with its script /admin.js; and their
// /style.css. It panics if a URL of cfg is neither empty nor an absolute
// http or https URL: a configuration error, as with a bad pattern given
// to http.ServeMux.
func Handler(cfg Config) http.Handler {
	if cfg.AdminURL == "" {
		cfg.AdminURL = cfg.IssuerURL
	}
	var connect []string
	for _, f := range []struct {
		name string
		url  *string
	}{{"GatewayURL", &cfg.GatewayURL}, {"IssuerURL", &cfg.IssuerURL}, {"AdminURL", &cfg.AdminURL}} {
		*f.url = strings.TrimSuffix(*f.url, "/")
		if *f.url == "" {
			continue
		}
		origin, err := originOf(*f.url)
		if err != nil {
			panic("webclient: " + f.name + ": " + err.Error())
		}
		connect = append(connect, origin)
	}
	tokenURL := issuer.TokenPath
	if cfg.IssuerURL != "" {
		tokenURL = cfg.IssuerURL + issuer.TokenPath
	}
	var index, adminIndex bytes.Buffer
	if err := page.Execute(&index, struct{ GatewayURL, TokenURL string }{cfg.GatewayURL, tokenURL}); err != nil {
		panic("webclient: " + err.Error()) // the embedded template is fixed: tests catch this
	}
	if err := adminPage.Execute(&adminIndex, struct{ AdminURL, TokenURL string }{cfg.AdminURL, tokenURL}); err != nil {
		panic("webclient: " + err.Error())
	}
	// The pages may run only their own scripts and talk only to the
	// gateway and the issuer.
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src " + strings.Join(slices.Compact(append([]string{"'self'"}, connect...)), " ") +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", static(index.Bytes(), "text/html; charset=utf-8", csp))
	mux.Handle("GET /app.js", embedded("dist/app.js", "text/javascript; charset=utf-8", csp))
	mux.Handle("GET /admin.html", static(adminIndex.Bytes(), "text/html; charset=utf-8", csp))
	mux.Handle("GET /admin.js", embedded("dist/admin.js", "text/javascript; charset=utf-8", csp))
	mux.Handle("GET /style.css", embedded("static/style.css", "text/css; charset=utf-8", csp))
	return mux
}

// originOf returns the origin (RFC 6454) of an absolute http(s) URL
// without user information. Its errors never repeat a password.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not an absolute http or https URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("%q is not an absolute http or https URL without user information", u.Redacted())
	}
	return u.Scheme + "://" + u.Host, nil
}

func embedded(name, contentType, csp string) http.Handler {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("webclient: " + err.Error()) // embedded above
	}
	return static(b, contentType, csp)
}

// static serves fixed content, revalidated by its ETag on every load so
// that a rebuilt page is picked up at once.
func static(b []byte, contentType, csp string) http.Handler {
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(b))
	})
}
