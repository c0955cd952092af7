package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis/portcullis/gateway/config"
)

// ReloadPath is where the admin listener takes POST to read the
// configuration file again.
const ReloadPath = "/admin/reload"

// reloadReadyTimeout bounds the wait, in a reload that brings new issuers,
// for their keys: a generation that cannot verify tokens does not replace
// one that can.
const reloadReadyTimeout = 10 * time.Second

// reloader serializes reloads and remembers how the last one went.
type reloader struct {
	reloadMu  sync.Mutex
	lastError atomic.Pointer[[]string] // the mistakes of the last reload; nil or empty when it succeeded
	reloads   metric.Int64Counter
}

var (
	reloadOK     = metric.WithAttributes(attribute.String("result", "ok"))
	reloadFailed = metric.WithAttributes(attribute.String("result", "failed"))
)

// Generation returns the number of the configuration generation serving
// new calls: 1 at start, one more for each reload that succeeded.
func (g *Gateway) Generation() uint64 { return g.current().number }

// Reload replaces the gateway's configuration with cfg without dropping a
// call. It builds a whole new generation beside the one serving (catalog,
// routes, verifier, limits, edge), validated as a whole, and swaps it in
// at once; calls in flight, streams included, finish on the generation
// they started on, which is closed when its last call ends. Parts whose
// settings did not change are carried over: the verifier with its cache of
// verified tokens and its keys, the rate limit store with every budget,
// the internal tokens' key, and the backends' connections. Telemetry, the
// listeners, TLS and the server's limits keep their settings of the start.
//
// A configuration that fails (an undeclared RPC in a routed service, a
// part that cannot start, issuers whose keys do not come within ten
// seconds) is refused whole: the generation serving stays, the error names
// every mistake, and it is logged, counted
// (portcullis_reloads_total{result="failed"}) and shown by /readyz. Reload
// returns the number of the generation serving afterwards.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) (uint64, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.reload(ctx, cfg)
}

// ReloadFile reads the configuration file named by [WithConfigFile] again
// and reloads it as [Gateway.Reload] does. A file with mistakes is refused
// the same way, each mistake with its line and column.
func (g *Gateway) ReloadFile(ctx context.Context) (uint64, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.opts.configFile == "" {
		return g.Generation(), errors.New("reload: the gateway was not given a configuration file")
	}
	cfg, err := config.Load(g.opts.configFile)
	if err != nil {
		return g.refused(ctx, err)
	}
	return g.reload(ctx, cfg)
}

// rebuild reloads the configuration serving, for descriptors that
// changed.
func (g *Gateway) rebuild(ctx context.Context) (uint64, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.reload(ctx, g.current().cfg)
}

func (g *Gateway) reload(ctx context.Context, cfg *config.Config) (uint64, error) {
	start := time.Now()
	prev := g.current()
	gen, err := g.build(cfg, prev)
	if err == nil && gen.verifier != prev.verifier {
		if err = waitReady(ctx, gen); err != nil {
			_ = gen.close()
			err = retryable{err}
		}
	}
	if err != nil {
		return g.refused(ctx, err)
	}
	g.commit(gen)
	g.lastError.Store(nil)
	g.reloads.Add(ctx, 1, reloadOK)
	g.logger.InfoContext(ctx, "configuration reloaded", "generation", gen.number, "routes", len(cfg.Routes),
		"after", time.Since(start).Round(time.Millisecond).String())
	if keys := restartOnly(g.cfg, cfg); len(keys) > 0 {
		g.logger.WarnContext(ctx, "configuration reloaded, but these settings take effect only at restart", "keys", keys)
	}
	return gen.number, nil
}

// retryable is the refusal of a reload that may succeed if tried again
// with the same configuration file: an issuer's keys not fetched yet, a
// file the configuration names that does not hold what it must yet. The
// watch tries such a reload again ([Gateway.watch]).
type retryable struct{ error }

func (r retryable) Unwrap() error { return r.error }

// refused records a reload that failed and returns its error.
func (g *Gateway) refused(ctx context.Context, err error) (uint64, error) {
	list := mistakes(err)
	g.lastError.Store(&list)
	g.reloads.Add(ctx, 1, reloadFailed)
	g.logger.ErrorContext(ctx, "configuration reload refused: the running configuration stays", "generation", g.Generation(), "mistakes", list)
	return g.Generation(), fmt.Errorf("reload refused: %w", err)
}

// waitReady waits, for at most reloadReadyTimeout, until gen can verify
// tokens.
func waitReady(ctx context.Context, gen *generation) error {
	ctx, cancel := context.WithTimeout(ctx, reloadReadyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := gen.ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the new configuration cannot verify tokens: %w", err)
		case <-tick.C:
		}
	}
}

// mistakes lists what err says went wrong, one entry a mistake.
func mistakes(err error) []string {
	var ce *config.Error
	if errors.As(err, &ce) {
		out := make([]string, len(ce.Mistakes))
		for i, m := range ce.Mistakes {
			out[i] = ce.File + ":" + m.String()
		}
		return out
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// restartOnly returns the keys that differ between the configuration of
// the start and next, and that a reload does not apply.
func restartOnly(start, next *config.Config) []string {
	var keys []string
	check := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			keys = append(keys, key)
		}
	}
	check("listen", start.Listen, next.Listen)
	check("admin", start.Admin, next.Admin)
	check("grpc_listen", start.GRPCListen, next.GRPCListen)
	check("tls", start.TLS, next.TLS)
	check("telemetry", start.Telemetry, next.Telemetry)
	check("reload", start.Reload, next.Reload)
	a, b := start.Limits, next.Limits
	check("limits.max_concurrent_streams", a.MaxConcurrentStreams, b.MaxConcurrentStreams)
	check("limits.read_header_timeout", a.ReadHeaderTimeout, b.ReadHeaderTimeout)
	check("limits.idle_timeout", a.IdleTimeout, b.IdleTimeout)
	check("limits.shutdown_timeout", a.ShutdownTimeout, b.ShutdownTimeout)
	return keys
}

// serveReload answers POST /admin/reload: 200 with the new generation's
// number, or 422 with the generation still serving and every mistake.
func (g *Gateway) serveReload(w http.ResponseWriter, r *http.Request) {
	n, err := g.ReloadFile(r.Context())
	if err != nil {
		writeStatus(w, http.StatusUnprocessableEntity, map[string]any{"status": "refused", "generation": n, "mistakes": mistakes(errors.Unwrap(err))})
		return
	}
	writeStatus(w, http.StatusOK, map[string]any{"status": "reloaded", "generation": n})
}

// reloadStatus adds the generation serving, and the mistakes of the last
// reload when it failed, to the body of /readyz.
func (g *Gateway) reloadStatus(body map[string]any) {
	body["generation"] = g.Generation()
	if last := g.lastError.Load(); last != nil && len(*last) > 0 {
		body["last_reload_error"] = strings.Join(*last, "\n")
	}
}

// reloadMetrics registers portcullis.reloads (Prometheus
// portcullis_reloads_total), counted by result ok or failed, and the gauge
// portcullis.config.generation (portcullis_config_generation), the
// generation serving new calls.
func (g *Gateway) reloadMetrics() error {
	m := g.telemetry.MeterProvider().Meter("github.com/portcullis/portcullis/gateway")
	var err error
	if g.reloads, err = m.Int64Counter("portcullis.reloads",
		metric.WithDescription("Configuration reloads, by result: ok, or failed (the running configuration stayed).")); err != nil {
		return fmt.Errorf("reload metrics: %w", err)
	}
	gauge, err := m.Int64ObservableGauge("portcullis.config.generation",
		metric.WithDescription("The configuration generation serving new calls: 1 at start, one more for each reload that succeeded."))
	if err != nil {
		return fmt.Errorf("reload metrics: %w", err)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if gen := g.current(); gen != nil {
			o.ObserveInt64(gauge, int64(gen.number))
		}
		return nil
	}, gauge)
	if err != nil {
		return fmt.Errorf("reload metrics: %w", err)
	}
	g.closers = append(g.closers, reg.Unregister)
	return nil
}
