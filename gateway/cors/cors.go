package cors

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	rscors "github.com/rs/cors"
)

// CORS holds the policies of a gateway: a default one and those of the
// routes that differ. Build it with [New]; it is safe for concurrent use.
type CORS struct {
	def    *rscors.Cors
	routes map[string]*rscors.Cors // by service path, "/pkg.Service/"
	route  func(method, path string) (string, bool)
}

// New checks the policies and returns their CORS handler. def applies to
// every request unless routes holds a policy for its route, which then
// replaces def whole. A route is a service's path prefix, "/pkg.Service/":
// its RPC paths are matched directly, and other paths (REST) through the
// resolver of [WithRouteResolver]. New reports every invalid policy and
// route at once.
func New(def Policy, routes map[string]Policy, opts ...Option) (*CORS, error) {
	cfg := newConfig(opts)
	var errs []error
	c := &CORS{route: cfg.route}
	var err error
	if c.def, err = newCors(def); err != nil {
		errs = append(errs, fmt.Errorf("cors: %w", err))
	}
	if len(routes) > 0 {
		c.routes = make(map[string]*rscors.Cors, len(routes))
	}
	for prefix, p := range routes {
		if !validRoute(prefix) {
			errs = append(errs, fmt.Errorf("cors: route %q is not a service path such as /pkg.Service/", prefix))
			continue
		}
		if c.routes[prefix], err = newCors(p); err != nil {
			errs = append(errs, fmt.Errorf("cors: route %s: %w", prefix, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Wrap returns h behind CORS: preflights are answered here and never reach
// h; every other request is passed to h with the CORS headers of its
// route's policy already set on the response, so that they go out with
// whatever h writes, errors included.
func (c *CORS) Wrap(h http.Handler) http.Handler {
	w := &wrapped{c: c, def: c.def.Handler(h)}
	if len(c.routes) > 0 {
		w.routes = make(map[string]http.Handler, len(c.routes))
		for prefix, rc := range c.routes {
			w.routes[prefix] = rc.Handler(h)
		}
	}
	return w
}

type wrapped struct {
	c      *CORS
	def    http.Handler
	routes map[string]http.Handler
}

func (w *wrapped) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.routes == nil {
		w.def.ServeHTTP(rw, r)
		return
	}
	w.handler(r).ServeHTTP(rw, r)
}

// handler returns the handler of the request's route: its RPC path prefix
// if a policy names it, else the route the resolver finds for its path,
// else the default.
func (w *wrapped) handler(r *http.Request) http.Handler {
	path := r.URL.Path
	if h, ok := w.routes[servicePrefix(path)]; ok {
		return h
	}
	if w.c.route == nil {
		return w.def
	}
	method := r.Method
	if method == http.MethodOptions {
		if m := r.Header.Get("Access-Control-Request-Method"); m != "" {
			method = m // a preflight asks for the route of the method to come
		}
	}
	if prefix, ok := w.c.route(method, path); ok {
		if h, ok := w.routes[prefix]; ok {
			return h
		}
	}
	return w.def
}

// servicePrefix returns the first segment of path with its slashes,
// "/pkg.Service/" for an RPC path, or "".
func servicePrefix(path string) string {
	if len(path) < 2 || path[0] != '/' {
		return ""
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return ""
	}
	return path[:end+2]
}

// validRoute reports whether prefix is "/" + a service's full name + "/".
func validRoute(prefix string) bool {
	name, ok := strings.CutPrefix(prefix, "/")
	if !ok {
		return false
	}
	name, ok = strings.CutSuffix(name, "/")
	if !ok || name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return !strings.Contains(name, "..")
}

// newCors builds the rs/cors handler of a policy.
func newCors(p Policy) (*rscors.Cors, error) {
	n, err := p.normalize()
	if err != nil {
		return nil, err
	}
	opts := rscors.Options{
		AllowedMethods:   AllowedMethods(),
		AllowedHeaders:   n.allowedHeaders,
		ExposedHeaders:   n.exposedHeaders,
		MaxAge:           n.maxAge,
		AllowCredentials: n.allowCredentials,
	}
	switch {
	case n.any:
		opts.AllowedOrigins = []string{"*"}
	case len(n.origins) == 0:
		// rs/cors reads no origins as every origin: refuse them all instead.
		opts.AllowOriginFunc = func(string) bool { return false }
	default:
		opts.AllowedOrigins = n.origins
	}
	return rscors.New(opts), nil
}
