package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/portcullis/portcullis/gateway/catalog"
)

// Client is a client of a token issuer, as the graph shows it.
type Client struct {
	// ID is the client id.
	ID string
	// Grants names the permissions the client is granted, such as
	// "LIC.READ_ORDERS". Names not in the catalog are shown as such.
	Grants []string
	// Tier is the client's tier, or "".
	Tier string
}

// ClientsFunc lists the clients to show. It is called on every request.
type ClientsFunc func(context.Context) ([]Client, error)

var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
)

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"style":  func() template.CSS { return template.CSS(pageCSS) },
	"script": func() template.JS { return template.JS(pageJS) },
}).Parse(pageHTML))

// csp lets the page run only its own inline script and style, and fetch
// only from its own origin.
var csp = "default-src 'none'; script-src '" + hash(pageJS) + "'; style-src '" + hash(pageCSS) + "'; " +
	"connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Handler returns the page of the permission graph of cat: its domains,
// their permissions, the methods that require them and, when clients is
// not nil, the clients granted them and the methods each can call. It
// answers GET and HEAD on whatever path it is mounted at, with the query
// parameter q narrowing the graph (see the package documentation), and
// with format=json the same graph as JSON. It panics if cat is nil.
//
// The page is read-only but shows who may call what: serve it where only
// operators reach it, such as the gateway's admin listener.
func Handler(cat *catalog.Catalog, clients ClientsFunc) http.Handler {
	if cat == nil {
		panic("graph: nil catalog")
	}
	return &handler{cat: cat, clients: clients}
}

type handler struct {
	cat     *catalog.Catalog
	clients ClientsFunc
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the permission graph is read-only: use GET", http.StatusMethodNotAllowed)
		return
	}
	var clients []Client
	var clientsErr error
	if h.clients != nil {
		clients, clientsErr = h.clients(r.Context())
	}
	g := newGraph(h.cat, clients, h.clients != nil && clientsErr == nil)
	q := r.URL.Query()
	query := q.Get("q")
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	switch format := q.Get("format"); format {
	case "json":
		g.match(query)
		body, err := json.MarshalIndent(g.export(query, clientsErr), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		hd.Set("Content-Type", "application/json")
		w.Write(append(body, '\n'))
	case "", "html":
		var b bytes.Buffer
		if err := pageTemplate.Execute(&b, g.page(query, clientsErr)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", csp)
		hd.Set("Referrer-Policy", "no-referrer")
		w.Write(b.Bytes())
	default:
		http.Error(w, "format must be html or json", http.StatusBadRequest)
	}
}
