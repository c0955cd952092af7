package metadata_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/metadata"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/prototest"
)

// exampleCatalog is the catalog of the example services.
func exampleCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// serve mounts h as the gateway does, on a real HTTP/2 (h2c) server, and
// returns its URL.
func serve(t testing.TB, h *metadata.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(h.Pattern(), h)
	return h2ctest.Serve(t, mux)
}

// do sends a request with the given headers and returns the response and
// its body.
func do(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := h2ctest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// The document a client fetches, as curl would: the resource, the
// issuers, every permission of the example catalog as a scope, the header
// as the only bearer method, JSON that caches may keep and any page read.
func TestServeDocument(t *testing.T) {
	t.Parallel()
	h, err := metadata.New(exampleCatalog(t), metadata.Resource{
		Identifier:           "https://api.example.com",
		AuthorizationServers: []string{"https://auth.example.com", "http://127.0.0.1:8081"},
		Name:                 "Example API",
		Documentation:        "https://docs.example.com/api",
		PolicyURI:            "https://example.com/policy",
		TOSURI:               "https://example.com/tos",
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Path() != "/.well-known/oauth-protected-resource" || h.URL() != "https://api.example.com/.well-known/oauth-protected-resource" {
		t.Fatalf("Path %q, URL %q", h.Path(), h.URL())
	}
	url := serve(t, h)
	res, body := do(t, http.MethodGet, url+"/.well-known/oauth-protected-resource", map[string]string{"Origin": "https://app.elsewhere.example"})
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("GET = %d over HTTP/%d: %s", res.StatusCode, res.ProtoMajor, body)
	}
	for k, want := range map[string]string{
		"Content-Type":                "application/json",
		"Cache-Control":               "public, max-age=300",
		"Access-Control-Allow-Origin": "*",
		"X-Content-Type-Options":      "nosniff",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	const want = `{
  "resource": "https://api.example.com",
  "authorization_servers": [
    "https://auth.example.com",
    "http://127.0.0.1:8081"
  ],
  "scopes_supported": [
    "LIC.READ_REQUIREMENTS",
    "LIC.READ_ORDERS",
    "LIC.WRITE_ORDERS",
    "ORD.READ",
    "ORD.WRITE"
  ],
  "bearer_methods_supported": [
    "header"
  ],
  "resource_name": "Example API",
  "resource_documentation": "https://docs.example.com/api",
  "resource_policy_uri": "https://example.com/policy",
  "resource_tos_uri": "https://example.com/tos"
}
`
	if body != want {
		t.Fatalf("document:\n%s\nwant:\n%s", body, want)
	}
	var doc metadata.Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if got := h.Document(); !slices.Equal(got.ScopesSupported, doc.ScopesSupported) || got.Resource != doc.Resource {
		t.Errorf("Document() = %+v, served %+v", got, doc)
	}

	// HEAD: the same headers, no body.
	res, body = do(t, http.MethodHead, url+"/.well-known/oauth-protected-resource", nil)
	if res.StatusCode != http.StatusOK || body != "" || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("HEAD = %d %q %v", res.StatusCode, body, res.Header)
	}
}

// The fewest fields: members without a value are left out (RFC 9728
// §3.2), but the bearer method is always there.
func TestMinimalDocument(t *testing.T) {
	t.Parallel()
	files := prototest.Files(t, map[string]string{"bare/v1/bare.proto": `
syntax = "proto3";
package bare.v1;
import "gateway/v1/options.proto";
message M {}
service OpenService {
  rpc Ping(M) returns (M) { option (gateway.v1.access) = {public: true}; }
}
`})
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	h, err := metadata.New(cat, metadata.Resource{Identifier: "https://api.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	_, body := do(t, http.MethodGet, serve(t, h)+"/.well-known/oauth-protected-resource", nil)
	const want = "{\n  \"resource\": \"https://api.example.com/\",\n  \"bearer_methods_supported\": [\n    \"header\"\n  ]\n}\n"
	if body != want {
		t.Fatalf("document %s, want %s", body, want)
	}
}

// The scopes are the catalog's permissions, every one and nothing else,
// for any catalog: here one with three domains declared out of order.
func TestDocumentMatchesCatalog(t *testing.T) {
	t.Parallel()
	files := prototest.Files(t, map[string]string{"acme/v1/acme.proto": `
syntax = "proto3";
package acme.v1;
import "gateway/v1/options.proto";
enum ZooPermission {
  option (gateway.v1.domain) = {name: "ZOO"};
  ZOO_PERMISSION_UNSPECIFIED = 0;
  ZOO_PERMISSION_FEED = 1 [(gateway.v1.permission) = {mask: 1}];
}
enum AcmePermission {
  option (gateway.v1.domain) = {name: "ACME"};
  ACME_PERMISSION_UNSPECIFIED = 0;
  ACME_PERMISSION_WRITE = 1 [(gateway.v1.permission) = {mask: 4}];
  ACME_PERMISSION_READ = 2 [(gateway.v1.permission) = {mask: 1}];
  ACME_PERMISSION_ADMIN = 3 [(gateway.v1.permission) = {mask: 1024}];
}
enum BillPermission {
  option (gateway.v1.domain) = {name: "BILL"};
  BILL_PERMISSION_UNSPECIFIED = 0;
  BILL_PERMISSION_PAY = 1 [(gateway.v1.permission) = {mask: 2}];
}
message M {}
service AcmeService {
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["ACME.READ"]}; }
  rpc Pay(M) returns (M) { option (gateway.v1.access) = {requires: ["BILL.PAY", "ACME.WRITE"]}; }
}
`})
	for name, cat := range map[string]*catalog.Catalog{"example": exampleCatalog(t), "acme": mustCatalog(t, files)} {
		h, err := metadata.New(cat, metadata.Resource{Identifier: "https://api.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, d := range cat.Domains() {
			for _, p := range d.Permissions {
				want = append(want, p.Domain+"."+p.Name)
			}
		}
		_, body := do(t, http.MethodGet, serve(t, h)+"/.well-known/oauth-protected-resource", nil)
		var doc metadata.Document
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(doc.ScopesSupported, want) {
			t.Errorf("%s: scopes_supported %q, want the catalog's %q", name, doc.ScopesSupported, want)
		}
		for _, m := range cat.Methods() {
			for _, p := range m.Requires {
				if !slices.Contains(doc.ScopesSupported, p.String()) {
					t.Errorf("%s: %s requires %s, which scopes_supported lacks", name, m.Procedure, p)
				}
			}
		}
	}
	h, err := metadata.New(mustCatalog(t, files), metadata.Resource{Identifier: "https://api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Document().ScopesSupported, []string{"ACME.WRITE", "ACME.READ", "ACME.ADMIN", "BILL.PAY", "ZOO.FEED"}; !slices.Equal(got, want) {
		t.Errorf("scopes %q, want %q: domains by name, permissions as declared", got, want)
	}
}

func mustCatalog(t *testing.T, files *protoregistry.Files) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// A resource identifier with a path publishes its metadata under the
// well-known prefix, followed by that path (RFC 9728 §3.1), and nowhere
// else.
func TestIdentifierPath(t *testing.T) {
	t.Parallel()
	cat := exampleCatalog(t)
	for _, tc := range []struct {
		identifier, path, url string
		notServed             []string
	}{
		{"https://api.example.com", "/.well-known/oauth-protected-resource", "https://api.example.com/.well-known/oauth-protected-resource",
			[]string{"/.well-known/oauth-protected-resource/", "/.well-known/oauth-protected-resource/x"}},
		{"https://api.example.com:8443/", "/.well-known/oauth-protected-resource", "https://api.example.com:8443/.well-known/oauth-protected-resource", nil},
		{"https://api.example.com/tenant-a/v1", "/.well-known/oauth-protected-resource/tenant-a/v1", "https://api.example.com/.well-known/oauth-protected-resource/tenant-a/v1",
			[]string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/tenant-a", "/.well-known/oauth-protected-resource/tenant-a/v1/"}},
		{"https://api.example.com/v1/", "/.well-known/oauth-protected-resource/v1/", "https://api.example.com/.well-known/oauth-protected-resource/v1/",
			[]string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/v1/more"}},
		{"http://127.0.0.1:8080", "/.well-known/oauth-protected-resource", "http://127.0.0.1:8080/.well-known/oauth-protected-resource", nil},
	} {
		h, err := metadata.New(cat, metadata.Resource{Identifier: tc.identifier})
		if err != nil {
			t.Fatalf("%s: %v", tc.identifier, err)
		}
		if h.Path() != tc.path || h.URL() != tc.url {
			t.Errorf("%s: Path %q, URL %q; want %q, %q", tc.identifier, h.Path(), h.URL(), tc.path, tc.url)
		}
		url := serve(t, h)
		res, body := do(t, http.MethodGet, url+tc.path, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"resource": "`+tc.identifier+`"`) {
			t.Errorf("%s: GET %s = %d %s", tc.identifier, tc.path, res.StatusCode, body)
		}
		for _, p := range tc.notServed {
			if res, _ := do(t, http.MethodGet, url+p, nil); res.StatusCode != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d, want 404", tc.identifier, p, res.StatusCode)
			}
		}
	}
}

// Methods other than GET and HEAD: OPTIONS is answered, preflights from
// any origin included; the rest get 405 with Allow.
func TestMethods(t *testing.T) {
	t.Parallel()
	h, err := metadata.New(exampleCatalog(t), metadata.Resource{Identifier: "https://api.example.com"}, metadata.WithMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, h) + "/.well-known/oauth-protected-resource"
	res, body := do(t, http.MethodOptions, url, map[string]string{
		"Origin": "https://app.example.net", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "mcp-protocol-version",
	})
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, HEAD",
		"Access-Control-Allow-Headers": "*",
		"Access-Control-Max-Age":       "3600",
		"Allow":                        "GET, HEAD, OPTIONS",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("preflight %s: %q, want %q", k, got, want)
		}
	}
	if res.StatusCode != http.StatusNoContent || body != "" {
		t.Errorf("preflight = %d %q, want 204", res.StatusCode, body)
	}
	if res, _ := do(t, http.MethodGet, url, nil); res.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("Cache-Control %q with WithMaxAge(1h)", res.Header.Get("Cache-Control"))
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res, body := do(t, method, url, nil)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD, OPTIONS" ||
			body != `{"error":"method not allowed: the metadata is served to GET and HEAD"}`+"\n" {
			t.Errorf("%s = %d, Allow %q, %q", method, res.StatusCode, res.Header.Get("Allow"), body)
		}
	}
}

// An outer CORS handler's choice of origin stands: the handler sets "*"
// only when none is set.
func TestOuterCORSStands(t *testing.T) {
	t.Parallel()
	h, err := metadata.New(exampleCatalog(t), metadata.Resource{Identifier: "https://api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Access-Control-Allow-Origin", "https://app.example.com")
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://app.example.com" || rec.Code != http.StatusOK {
		t.Errorf("%d, Access-Control-Allow-Origin %q", rec.Code, got)
	}
}

// New reports every invalid field and option at once, naming each.
func TestNewInvalid(t *testing.T) {
	t.Parallel()
	cat := exampleCatalog(t)
	for _, tc := range []struct {
		name string
		r    metadata.Resource
		opts []metadata.Option
		want []string
	}{
		{"no identifier", metadata.Resource{}, nil,
			[]string{"metadata: resource identifier is required, such as https://api.example.com"}},
		{"http identifier", metadata.Resource{Identifier: "http://api.example.com"}, nil,
			[]string{`metadata: resource identifier "http://api.example.com" is not https (http only for a loopback host)`}},
		{"relative", metadata.Resource{Identifier: "api.example.com"}, nil,
			[]string{`metadata: resource identifier "api.example.com" is not an absolute http or https URL`}},
		{"query", metadata.Resource{Identifier: "https://api.example.com/?tenant=a"}, nil,
			[]string{`metadata: resource identifier "https://api.example.com/?tenant=a" has a query`}},
		{"fragment", metadata.Resource{Identifier: "https://api.example.com/#top"}, nil,
			[]string{`metadata: resource identifier "https://api.example.com/#top" has a fragment`}},
		{"user", metadata.Resource{Identifier: "https://me@api.example.com"}, nil,
			[]string{`metadata: resource identifier "https://me@api.example.com" has user information`}},
		{"quote", metadata.Resource{Identifier: `https://api.example.com/"`}, nil,
			[]string{`metadata: resource identifier "https://api.example.com/\"" is not printable ASCII without spaces, quotes or backslashes`}},
		{"escapes", metadata.Resource{Identifier: "https://api.example.com/a%2Fb"}, nil,
			[]string{`metadata: resource identifier "https://api.example.com/a%2Fb" has a path other than '/' and segments of letters, digits, '-', '.', '_' and '~'`}},
		{"dot segment", metadata.Resource{Identifier: "https://api.example.com/a/../b"}, nil,
			[]string{`has a path other than`}},
		{"wildcard", metadata.Resource{Identifier: "https://api.example.com/{x}"}, nil,
			[]string{`has a path other than`}},
		{"everything else", metadata.Resource{
			Identifier:           "https://api.example.com",
			AuthorizationServers: []string{"https://auth.example.com", "portcullis-dev", "http://auth.example.com", "https://auth.example.com/?x", "https://auth.example.com"},
			Name:                 "Example\nAPI",
			Documentation:        "/docs",
			PolicyURI:            "ftp://example.com/policy",
			TOSURI:               "https://example.com/tos#x",
		}, []metadata.Option{metadata.WithMaxAge(-time.Second), metadata.WithMaxAge(1500 * time.Millisecond)},
			[]string{
				"metadata: max age -1s is not whole seconds from 0s to 24h",
				"metadata: max age 1.5s is not whole seconds from 0s to 24h",
				`metadata: authorization server "portcullis-dev" is not an absolute http or https URL`,
				`metadata: authorization server "http://auth.example.com" is not https (http only for a loopback host)`,
				`metadata: authorization server "https://auth.example.com/?x" has a query`,
				`metadata: authorization server "https://auth.example.com" is listed twice`,
				`metadata: documentation URL "/docs" is not an absolute http or https URL`,
				`metadata: policy URL "ftp://example.com/policy" is not an absolute http or https URL`,
				`metadata: terms of service URL "https://example.com/tos#x" has a fragment`,
				`metadata: resource name "Example\nAPI" has control characters`,
			}},
	} {
		_, err := metadata.New(cat, tc.r, tc.opts...)
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("%s: %d errors, want %d:\n%v", tc.name, len(lines), len(tc.want), err)
			continue
		}
		for i, want := range tc.want {
			if !strings.Contains(lines[i], want) {
				t.Errorf("%s: error %d %q, want %q", tc.name, i, lines[i], want)
			}
		}
	}
	if _, err := metadata.New(nil, metadata.Resource{Identifier: "https://api.example.com"}); err == nil {
		t.Error("New(nil catalog) succeeded")
	}
}

func TestCheckIssuer(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"https://auth.example.com":            true,
		"https://auth.example.com/realms/a":   true,
		"http://127.0.0.1:8081":               true,
		"http://localhost:8081":               true,
		"http://[::1]:8081":                   true,
		"http://auth.example.com":             false,
		"portcullis-dev":                      false,
		"https://auth.example.com?tenant=a":   false,
		"https://auth.example.com#a":          false,
		"":                                    false,
		"https://auth.example.com/\"quoted\"": false,
	} {
		if err := metadata.CheckIssuer(s); (err == nil) != ok {
			t.Errorf("CheckIssuer(%q) = %v, want ok %v", s, err, ok)
		}
	}
}
