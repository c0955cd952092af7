package gateway

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
)

// backendKey identifies a route's backend: routes that name the same
// endpoints the same way share one forward.Backend, and its connections.
func backendKey(r config.Route) string {
	return fmt.Sprintf("%q %q %+v %q %q %q %q %q", r.Backend, r.Endpoints, r.DNS, r.Protocol, r.CAFile, r.ClientCertFile, r.ClientKeyFile, r.Balancer)
}

// balancing returns the options that spread a route's calls over its
// endpoints: the balancer, the DNS name, ejection and retries.
func (g *generation) balancing(r config.Route) ([]forward.BackendOption, error) {
	balancer, err := forward.ParseBalancer(r.Balancer)
	if err != nil {
		return nil, err
	}
	opts := []forward.BackendOption{forward.WithBalancer(balancer)}
	if d := r.DNS; d != nil {
		opts = append(opts, forward.WithDNS(d.Name, d.Scheme, d.Refresh.Std(), nil))
	}
	h := g.cfg.Health
	o := forward.OutlierDetection{
		ConsecutiveFailures: h.Outlier.ConsecutiveFailures,
		BaseEjectionTime:    h.Outlier.BaseEjectionTime.Std(),
		MaxEjectionTime:     h.Outlier.MaxEjectionTime.Std(),
		MaxEjectionPercent:  h.Outlier.MaxEjectionPercent,
	}
	if !h.Outlier.IsEnabled() {
		o.ConsecutiveFailures = 0
	}
	opts = append(opts, forward.WithOutlierDetection(o), forward.WithRetries(forward.RetryPolicy{
		MaxAttempts:  h.Retries.MaxAttempts,
		MaxBodyBytes: h.Retries.MaxBodyBytes,
		BudgetRatio:  h.Retries.BudgetRatio,
		MinPerSecond: h.Retries.MinPerSecond,
		Window:       h.Retries.Window.Std(),
	}))
	return opts, nil
}

// endpointsByRoute returns, per routed service, the state of each
// endpoint of its backend, for /readyz.
func (g *generation) endpointsByRoute() map[string][]map[string]any {
	out := make(map[string][]map[string]any, len(g.byRoute))
	for service, b := range g.byRoute {
		var list []map[string]any
		for _, e := range b.Endpoints() {
			entry := map[string]any{"url": e.URL, "state": string(e.State)}
			if e.Err != "" {
				entry["error"] = e.Err
			}
			list = append(list, entry)
		}
		out[service] = list
	}
	return out
}

// observeEndpoints publishes, per endpoint of every backend of the
// generation serving, the calls sent, the calls that found it unreachable,
// its ejections and its state (1 up, 0 ejected or down), and per backend
// the retries. It is registered once for the process.
func (g *Gateway) observeEndpoints() error {
	meter := g.telemetry.MeterProvider().Meter("github.com/portcullis/portcullis/gateway")
	requests, err := meter.Int64ObservableCounter("portcullis.backend.endpoint.requests",
		metric.WithDescription("Calls (and retries) sent to a backend endpoint."), metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	failures, err := meter.Int64ObservableCounter("portcullis.backend.endpoint.failures",
		metric.WithDescription("Calls that found a backend endpoint unreachable."), metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	ejections, err := meter.Int64ObservableCounter("portcullis.backend.endpoint.ejections",
		metric.WithDescription("Times a backend endpoint was ejected after consecutive failures."), metric.WithUnit("{ejection}"))
	if err != nil {
		return err
	}
	up, err := meter.Int64ObservableGauge("portcullis.backend.endpoint.up",
		metric.WithDescription("1 while a backend endpoint takes calls, 0 while it is ejected or failing its health check."))
	if err != nil {
		return err
	}
	retries, err := meter.Int64ObservableCounter("portcullis.backend.retries",
		metric.WithDescription("Calls sent again to another endpoint of a backend."), metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		gen := g.current()
		if gen == nil {
			return nil
		}
		for _, b := range gen.backends {
			backend := attribute.String("backend", b.URL())
			o.ObserveInt64(retries, int64(b.Retries()), metric.WithAttributes(backend))
			for _, e := range b.Endpoints() {
				attrs := metric.WithAttributes(backend, attribute.String("endpoint", e.URL))
				o.ObserveInt64(requests, int64(e.Requests), attrs)
				o.ObserveInt64(failures, int64(e.Failures), attrs)
				o.ObserveInt64(ejections, int64(e.Ejections), attrs)
				state := int64(0)
				if e.State == forward.EndpointUp {
					state = 1
				}
				o.ObserveInt64(up, state, attrs)
			}
		}
		return nil
	}, requests, failures, ejections, up, retries)
	return err
}
