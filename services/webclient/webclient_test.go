package webclient_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/services/webclient"
)

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHandlerServesThePage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webclient.Handler(webclient.Config{
		GatewayURL: "http://127.0.0.1:8080/",
		IssuerURL:  "https://auth.example.com/tenant-1",
	}))
	t.Cleanup(srv.Close)
	bundle, err := os.ReadFile("dist/app.js")
	if err != nil {
		t.Fatal(err)
	}
	adminBundle, err := os.ReadFile("dist/admin.js")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path, contentType string
		contains          []string
	}{
		{"/", "text/html; charset=utf-8", []string{
			`data-gateway-url="http://127.0.0.1:8080"`,
			`data-token-url="https://auth.example.com/tenant-1/oauth2/token"`,
			`<script type="module" src="app.js"></script>`,
		}},
		{"/app.js", "text/javascript; charset=utf-8", []string{string(bundle)}},
		{"/admin.html", "text/html; charset=utf-8", []string{
			`data-admin-url="https://auth.example.com/tenant-1"`,
			`data-token-url="https://auth.example.com/tenant-1/oauth2/token"`,
			`<script type="module" src="admin.js"></script>`,
		}},
		{"/admin.js", "text/javascript; charset=utf-8", []string{string(adminBundle)}},
		{"/style.css", "text/css; charset=utf-8", []string{".chip.missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv.URL+tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d", tt.path, resp.StatusCode)
			}
			for k, want := range map[string]string{
				"Content-Type":            tt.contentType,
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' http://127.0.0.1:8080 https://auth.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Cache-Control":           "no-cache",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("GET %s lacks %.80q", tt.path, want)
				}
			}
			// A reload revalidates, and gets 304 while nothing changed.
			etag := resp.Header.Get("ETag")
			again, _ := get(t, srv.URL+tt.path, http.Header{"If-None-Match": {etag}})
			if etag == "" || again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match %q = %d, want 304", tt.path, etag, again.StatusCode)
			}
		})
	}
}

// TestHandlerAdminURL: the provisioning page may call an administration
// service elsewhere than the issuer, and may call nothing else.
func TestHandlerAdminURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webclient.Handler(webclient.Config{
		GatewayURL: "http://127.0.0.1:8080",
		IssuerURL:  "http://127.0.0.1:8081",
		AdminURL:   "https://admin.example.com/issuer/",
	}))
	t.Cleanup(srv.Close)
	resp, body := get(t, srv.URL+"/admin.html", nil)
	if !strings.Contains(body, `data-admin-url="https://admin.example.com/issuer"`) {
		t.Errorf("the page lacks its admin URL:\n%s", body)
	}
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' http://127.0.0.1:8080 http://127.0.0.1:8081 https://admin.example.com; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if got := resp.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("Content-Security-Policy %q, want %q", got, csp)
	}
}

func TestHandlerEscapesURLs(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webclient.Handler(webclient.Config{GatewayURL: `http://gw.example.com/a"><script>x</script>`}))
	t.Cleanup(srv.Close)
	_, body := get(t, srv.URL, nil)
	if strings.Contains(body, "<script>x") {
		t.Errorf("the gateway URL reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, `data-token-url="/oauth2/token"`) {
		t.Errorf("with no issuer URL the page should ask its own origin for tokens:\n%s", body)
	}
}

func TestHandlerRefusesOtherRequests(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webclient.Handler(webclient.Config{}))
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/index.html", http.StatusNotFound, ""},
		{http.MethodGet, "/dist/app.js", http.StatusNotFound, ""},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/app.js", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodHead, "/", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
				t.Errorf("%s %s = %d, Allow %q; want %d, Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.status, tt.allow)
			}
		})
	}
}

func TestHandlerPanicsOnABadURL(t *testing.T) {
	t.Parallel()
	for _, cfg := range []webclient.Config{
		{GatewayURL: "127.0.0.1:8080"},
		{GatewayURL: "ftp://gw.example.com"},
		{AdminURL: "admin.example.com"},
		{IssuerURL: "http://user:pass@auth.example.com"},
		{IssuerURL: "/relative"},
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, "not an absolute http or https URL") || strings.Contains(msg, "pass@") {
					t.Errorf("Handler(%+v) panicked with %q, want one saying the URL is not absolute, without its password", cfg, msg)
				}
			}()
			webclient.Handler(cfg)
		}()
	}
}
