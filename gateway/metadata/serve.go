package metadata

import (
	"net/http"
	"strings"
)

// Pattern returns the [http.ServeMux] pattern that matches [Handler.Path]
// and nothing below it.
func (h *Handler) Pattern() string {
	if strings.HasSuffix(h.path, "/") {
		return h.path + "{$}"
	}
	return h.path
}

// allowed lists the methods the document is served to.
const allowed = "GET, HEAD, OPTIONS"

// ServeHTTP serves the document to GET and HEAD, answers OPTIONS (CORS
// preflights included, for every origin), and refuses other methods with
// 405. Every answer may be read by a page of any origin unless an outer
// CORS handler already chose the Access-Control-Allow-Origin.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	if header.Get("Access-Control-Allow-Origin") == "" {
		header.Set("Access-Control-Allow-Origin", "*")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		header.Set("Content-Type", "application/json")
		header.Set("Content-Length", h.length)
		header.Set("Cache-Control", h.cacheControl)
		header.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(h.body)
		}
	case http.MethodOptions:
		header.Set("Allow", allowed)
		if r.Header.Get("Access-Control-Request-Method") != "" {
			header.Set("Access-Control-Allow-Methods", "GET, HEAD")
			header.Set("Access-Control-Allow-Headers", "*")
			header.Set("Access-Control-Max-Age", h.maxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		header.Set("Allow", allowed)
		header.Set("Content-Type", "application/json")
		header.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"method not allowed: the metadata is served to GET and HEAD"}` + "\n"))
	}
}
