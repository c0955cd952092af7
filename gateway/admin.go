package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
)

// AdminHandler returns the handler of the operator listener: /healthz (the
// process is alive), /readyz (whether the gateway takes calls, which
// backends are failing, the configuration generation and the last reload's
// mistakes), /metrics (Prometheus), /graph (the permission graph: domains,
// permissions, methods and, given [WithClients], the clients that hold
// them), /.well-known/jwks.json (the key set of the internal tokens, when a
// route has identity internal), POST /admin/reload (read the configuration
// file again: see [Gateway.ReloadFile]), and /debug/pprof/ when profiling
// is on.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

func (g *Gateway) newAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", g.telemetry.MetricsHandler())
	mux.Handle("/graph", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.current().graph.ServeHTTP(w, r)
	}))
	mux.Handle("GET "+JWKSPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := g.current().minter; m != nil {
			m.JWKSHandler().ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	mux.HandleFunc("POST "+ReloadPath, g.serveReload)
	if g.cfg.Telemetry.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

// readyz answers whether the gateway takes calls. It is not ready (503)
// until every issuer's keys are fetched, once it has begun to drain, and
// while every backend is failing, since then no routed call can succeed. A
// gateway with some backends failing stays ready, as "degraded", and names
// them: taking it out of a load balancer would fail the calls of every
// other route too.
func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	gen := g.current()
	body := map[string]any{"routes": len(gen.cfg.Routes), "backends": len(gen.backends)}
	failing := gen.failingBackends()
	if len(failing) > 0 {
		body["failing_backends"] = failing
	}
	gen.revocationStatus(body)
	g.reloadStatus(body)
	code := http.StatusOK
	switch err := g.serving(); {
	case err != nil:
		code, body["status"], body["reason"] = http.StatusServiceUnavailable, "not ready", err.Error()
	case len(failing) > 0 && len(failing) == len(gen.backends):
		code, body["status"], body["reason"] = http.StatusServiceUnavailable, "not ready", "every backend is failing: "+strings.Join(sortedKeys(failing), ", ")
	case len(failing) > 0:
		body["status"] = "degraded"
	default:
		body["status"] = "ready"
	}
	writeStatus(w, code, body)
}

func writeStatus(w http.ResponseWriter, code int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
