package graph_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/graph"

	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
	_ "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
)

func exampleCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

var exampleClients = []graph.Client{
	{ID: "reader", Tier: "free", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}},
	{ID: "operator", Tier: "pro", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}},
	{ID: "admin", Grants: []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS", "LIC.FLY"}},
}

func listed(clients []graph.Client) graph.ClientsFunc {
	return func(context.Context) ([]graph.Client, error) { return clients, nil }
}

// serve serves the page on a real HTTP server at /graph and returns its
// URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/graph", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/graph"
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// exported is the JSON of the graph, as tools read it.
type exported struct {
	Query   string `json:"query"`
	Methods []struct {
		Procedure string   `json:"procedure"`
		Public    bool     `json:"public"`
		Requires  []string `json:"requires"`
		Callers   []string `json:"callers"`
	} `json:"methods"`
	Permissions []struct {
		Name        string   `json:"name"`
		Mask        uint64   `json:"mask"`
		Description string   `json:"description"`
		RequiredBy  []string `json:"required_by"`
		GrantedTo   []string `json:"granted_to"`
	} `json:"permissions"`
	Clients []struct {
		ID            string   `json:"id"`
		Tier          string   `json:"tier"`
		Grants        []string `json:"grants"`
		UnknownGrants []string `json:"unknown_grants"`
		Calls         []string `json:"calls"`
	} `json:"clients"`
	ClientsError string `json:"clients_error"`
}

func getJSON(t *testing.T, base, query string) exported {
	t.Helper()
	res, body := get(t, base+"?format=json&q="+url.QueryEscape(query))
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var e exported
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return e
}

const (
	lic = "/example.licensing.v1.LicensingService/"
	ord = "/example.orders.v1.OrdersService/"
	adm = "/portcullis.admin.v1.ClientAdminService/"
)

// TestFilter narrows the graph by query, and pins what each kind of query
// shows.
func TestFilter(t *testing.T) {
	t.Parallel()
	base := serve(t, graph.Handler(exampleCatalog(t), listed(exampleClients)))
	licensing := []string{lic + "CreateLicenceOrder", lic + "GetLicenceOrder", lic + "ListJurisdictions", lic + "ListRequirements", lic + "WatchLicenceOrders"}
	for _, tc := range []struct {
		query                  string
		methods, perms, client []string
	}{
		{"", nil, nil, nil}, // everything: checked below
		{"LicensingService", licensing, []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS"}, []string{"operator", "reader"}},
		{"service:example.licensing.v1.LicensingService", licensing, []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS"}, []string{"operator", "reader"}},
		{"licensing list", []string{lic + "ListJurisdictions", lic + "ListRequirements"}, []string{"LIC.READ_REQUIREMENTS"}, []string{"operator", "reader"}},
		{"method:" + lic + "CreateLicenceOrder", []string{lic + "CreateLicenceOrder"}, []string{"LIC.READ_ORDERS", "LIC.WRITE_ORDERS"}, []string{"operator"}},
		{"CLIENT:Reader", []string{lic + "ListRequirements", ord + "GetOrder"}, []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}, []string{"reader"}},
		{"permission:ORD.WRITE", []string{ord + "ImportOrders", ord + "PlaceOrder", ord + "SyncOrders"}, []string{"ORD.WRITE"}, []string{"operator"}},
		{"domain:PORTCULLIS", []string{adm + "CreateClient", adm + "ListClients", adm + "ListPermissions", adm + "RevokeClient", adm + "RotateSecret", adm + "UpdateGrants"},
			[]string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"}, []string{"admin"}},
		{"client:read", nil, nil, nil}, // exact: no client is "read"
		{"nothing-like-this", nil, nil, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			e := getJSON(t, base, tc.query)
			var methods, perms, clients []string
			for _, m := range e.Methods {
				methods = append(methods, m.Procedure)
			}
			for _, p := range e.Permissions {
				perms = append(perms, p.Name)
			}
			for _, c := range e.Clients {
				clients = append(clients, c.ID)
			}
			if tc.query == "" {
				if len(methods) != 15 || len(perms) != 7 || !slices.Equal(clients, []string{"admin", "operator", "reader"}) {
					t.Errorf("everything: %d methods, %d permissions, clients %v", len(methods), len(perms), clients)
				}
				return
			}
			if !slices.Equal(methods, tc.methods) || !slices.Equal(perms, tc.perms) || !slices.Equal(clients, tc.client) {
				t.Errorf("%q shows\n methods %v\n permissions %v\n clients %v\nwant\n methods %v\n permissions %v\n clients %v",
					tc.query, methods, perms, clients, tc.methods, tc.perms, tc.client)
			}
		})
	}
}

// TestWhoCanCall pins the edges: who can call each method, what each
// permission is required by and granted to, what each client can call.
func TestWhoCanCall(t *testing.T) {
	t.Parallel()
	base := serve(t, graph.Handler(exampleCatalog(t), listed(exampleClients)))
	e := getJSON(t, base, "")
	callers := map[string]string{}
	for _, m := range e.Methods {
		callers[m.Procedure] = strings.Join(m.Callers, " ")
		if m.Public {
			callers[m.Procedure] = "public"
		}
	}
	for procedure, want := range map[string]string{
		lic + "ListJurisdictions":  "public",
		lic + "ListRequirements":   "operator reader",
		lic + "CreateLicenceOrder": "operator",
		ord + "GetOrder":           "operator reader",
		ord + "SyncOrders":         "operator",
		adm + "CreateClient":       "admin",
	} {
		if callers[procedure] != want {
			t.Errorf("%s: callers %q, want %q", procedure, callers[procedure], want)
		}
	}
	for _, p := range e.Permissions {
		if p.Name == "LIC.READ_REQUIREMENTS" && (p.Mask != 1 || p.Description != "Read licence requirements" ||
			!slices.Equal(p.RequiredBy, []string{lic + "ListRequirements", ord + "PlaceOrder"}) || !slices.Equal(p.GrantedTo, []string{"operator", "reader"})) {
			t.Errorf("LIC.READ_REQUIREMENTS: %+v", p)
		}
	}
	for _, c := range e.Clients {
		if c.ID == "admin" && (!slices.Equal(c.Grants, []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS"}) || !slices.Equal(c.UnknownGrants, []string{"LIC.FLY"}) || len(c.Calls) != 6) {
			t.Errorf("admin: %+v", c)
		}
		if c.ID == "reader" && (c.Tier != "free" || !slices.Equal(c.Calls, []string{lic + "ListRequirements", ord + "GetOrder"})) {
			t.Errorf("reader: %+v", c)
		}
	}
}

// text returns the text of n, with runs of white space folded.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
		case n.Type == html.ElementNode && n.Data == "br":
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// find returns the elements of doc that have the attribute name, with its
// value.
func find(doc *html.Node, name string) map[string]*html.Node {
	found := map[string]*html.Node{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if v, ok := attr(n, name); ok {
				found[v] = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func element(doc *html.Node, tag string) *html.Node {
	var found *html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && n.Data == tag {
			found = n
		}
		for c := n.FirstChild; c != nil && found == nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return found
}

func getPage(t *testing.T, u string) (*http.Response, *html.Node) {
	t.Helper()
	res, body := get(t, u)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return res, doc
}

// TestPage reads the page as a person would: the rows of the filtered
// tables, the drawing, and the policy that lets its own script run.
func TestPage(t *testing.T) {
	t.Parallel()
	base := serve(t, graph.Handler(exampleCatalog(t), listed(exampleClients)))
	res, doc := getPage(t, base+"?q=LicensingService")

	rows := find(doc, "data-procedure")
	if len(rows) != 5 {
		t.Errorf("%d method rows, want the 5 of LicensingService: %v", len(rows), rows)
	}
	for procedure, want := range map[string]string{
		lic + "ListRequirements":   "ListRequirements LIC.READ_REQUIREMENTS operator reader",
		lic + "ListJurisdictions":  "ListJurisdictions 60 per 1m, burst 10 public anyone, with or without a token",
		lic + "CreateLicenceOrder": "CreateLicenceOrder 10 per 1s, burst 5 LIC.READ_ORDERS LIC.WRITE_ORDERS operator",
		lic + "WatchLicenceOrders": "WatchLicenceOrders server streaming LIC.READ_ORDERS operator",
	} {
		if row, ok := rows[procedure]; !ok || text(row) != want {
			t.Errorf("row %s reads %q, want %q", procedure, text(rows[procedure]), want)
		}
	}
	if got := text(find(doc, "class")["showing"]); got != "Showing 5 of 15 methods, 3 of 7 permissions and 2 of 3 clients for LicensingService." {
		t.Errorf("summary %q", got)
	}
	if got := slices.Sorted(maps.Keys(find(doc, "data-client"))); !slices.Equal(got, []string{"operator", "reader"}) {
		t.Errorf("client rows %v", got)
	}
	if main := find(doc, "id")["content"]; main == nil {
		t.Error("no #content")
	} else if q, _ := attr(main, "data-query"); q != "LicensingService" {
		t.Errorf("#content data-query %q", q)
	}

	// The drawing: 2 clients, 3 permissions and the public node, 5
	// methods; 4 grants, 5 requirements and 1 public edge.
	svg := element(doc, "svg")
	if svg == nil {
		t.Fatal("no drawing")
	}
	kinds := map[string]int{}
	for _, n := range find(svg, "data-id") {
		k, _ := attr(n, "data-kind")
		kinds[k]++
	}
	if fmt.Sprint(kinds) != "map[:1 client:2 method:5 permission:3]" {
		t.Errorf("drawn nodes %v", kinds)
	}
	edges := 0
	var count func(*html.Node)
	count = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "path" {
			edges++
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			count(c)
		}
	}
	count(svg)
	if edges != 4+5+1 {
		t.Errorf("%d edges drawn, want 10", edges)
	}

	// Chips link to the node they name.
	chip := find(find(doc, "data-procedure")[lic+"ListRequirements"], "href")
	if _, ok := chip["?q=client%3areader"]; !ok {
		t.Errorf("the reader chip links to none of %v", slices.Sorted(maps.Keys(chip)))
	}

	// The inline script and style are the ones the policy allows.
	policy := res.Header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		el := element(doc, tag)
		sum := sha256.Sum256([]byte(el.FirstChild.Data))
		want := fmt.Sprintf("%s-src 'sha256-%s'", tag, base64.StdEncoding.EncodeToString(sum[:]))
		if !strings.Contains(policy, want) {
			t.Errorf("the policy %q does not allow the page's %s (%s)", policy, tag, want)
		}
	}
	if !strings.Contains(policy, "default-src 'none'") || !strings.Contains(policy, "connect-src 'self'") {
		t.Errorf("policy %q", policy)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
	}
}

// TestPageEscapes shows names as text, never as markup.
func TestPageEscapes(t *testing.T) {
	t.Parallel()
	base := serve(t, graph.Handler(exampleCatalog(t), listed([]graph.Client{{ID: "x", Grants: []string{`<img src=x onerror=alert(1)>`}}})))
	_, body := get(t, base+"?q="+url.QueryEscape(`"><script>alert(1)</script>`))
	if strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert") {
		t.Errorf("the page holds markup from a name or the query:\n%s", body)
	}
	_, doc := getPage(t, base+"?q=client:x")
	if got := text(find(doc, "data-client")["x"]); got != "x <img src=x onerror=alert(1)>? only public methods" {
		t.Errorf("client row %q", got)
	}
}

// TestWithoutClients: with no clients, or when they cannot be listed, the
// page shows the catalog and says why.
func TestWithoutClients(t *testing.T) {
	t.Parallel()
	cat := exampleCatalog(t)
	for _, tc := range []struct {
		name    string
		clients graph.ClientsFunc
		warning string
	}{
		{"none", nil, ""},
		{"failing", func(context.Context) ([]graph.Client, error) { return nil, errors.New("registry unreadable") }, "The clients could not be listed (registry unreadable): the graph shows the catalog alone."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := serve(t, graph.Handler(cat, tc.clients))
			_, doc := getPage(t, base)
			if got := text(find(doc, "class")["warning"]); got != tc.warning {
				t.Errorf("warning %q, want %q", got, tc.warning)
			}
			if n := len(find(doc, "data-procedure")); n != 15 {
				t.Errorf("%d method rows, want 15", n)
			}
			if find(doc, "id")["clients"] != nil || len(find(doc, "data-client")) != 0 {
				t.Error("a clients section without clients")
			}
			if row := text(find(doc, "data-procedure")[lic+"ListRequirements"]); row != "ListRequirements LIC.READ_REQUIREMENTS" {
				t.Errorf("row %q: no callers column without clients", row)
			}
			if e := getJSON(t, base, ""); e.Clients != nil || (tc.warning != "" && e.ClientsError != "registry unreadable") {
				t.Errorf("JSON clients %v, error %q", e.Clients, e.ClientsError)
			}
		})
	}
}

// TestTooManyToDraw leaves the drawing out past its bound, and says so.
func TestTooManyToDraw(t *testing.T) {
	t.Parallel()
	var clients []graph.Client
	for i := range 300 {
		clients = append(clients, graph.Client{ID: fmt.Sprintf("client-%03d", i), Grants: []string{"ORD.READ"}})
	}
	base := serve(t, graph.Handler(exampleCatalog(t), listed(clients)))
	_, doc := getPage(t, base)
	if element(doc, "svg") != nil {
		t.Error("drew 322 nodes")
	}
	if got := text(find(doc, "class")["hint"]); got != "322 nodes are too many to draw: narrow the filter to see the drawing. The tables list them all." {
		t.Errorf("hint %q", got)
	}
	if _, doc := getPage(t, base+"?q=client:client-007"); element(doc, "svg") == nil {
		t.Error("a narrow filter draws nothing")
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	base := serve(t, graph.Handler(exampleCatalog(t), nil))
	for _, tc := range []struct {
		method, query string
		status        int
		allow, body   string
	}{
		{http.MethodPost, "", http.StatusMethodNotAllowed, "GET, HEAD", "the permission graph is read-only: use GET\n"},
		{http.MethodGet, "?format=xml", http.StatusBadRequest, "", "format must be html or json\n"},
		{http.MethodHead, "", http.StatusOK, "", ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.query, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || res.Header.Get("Allow") != tc.allow || string(body) != tc.body {
			t.Errorf("%s %s: %d Allow %q %q, want %d %q %q", tc.method, tc.query, res.StatusCode, res.Header.Get("Allow"), body, tc.status, tc.allow, tc.body)
		}
	}
}
