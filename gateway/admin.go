package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
)

// AdminHandler returns the handler of the operator listener: /healthz (the
// process is alive), /readyz (keys fetched, backends configured) and
// /metrics (Prometheus), and /debug/pprof/ when profiling is on.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

func (g *Gateway) newAdmin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := g.Ready(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": err.Error()})
			return
		}
		writeStatus(w, http.StatusOK, map[string]any{"status": "ready", "routes": len(g.cfg.Routes), "backends": len(g.backends)})
	})
	mux.Handle("GET /metrics", g.telemetry.MetricsHandler())
	if g.cfg.Telemetry.Profiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
