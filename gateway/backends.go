package gateway

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/token"
)

// alwaysDropped are request headers never forwarded: cookies belong to the
// client's relation with the gateway's host, the trace context is the
// gateway's to set (its client span's), not the caller's to pass through,
// and a client certificate header is a proxy's to set, not a caller's.
var alwaysDropped = []string{"Cookie", "Traceparent", "Tracestate", "Baggage", "X-Forwarded-Client-Cert"}

// principalHeaders tells the backend who is calling. The forwarding handler
// drops any such header a client sent, so a backend can trust them when
// only the gateway can reach it.
func principalHeaders(ctx context.Context, h http.Header) {
	if p, ok := token.FromContext(ctx); ok {
		h.Set(forward.ClientIDHeader, p.ClientID)
		if p.Tier != "" {
			h.Set(forward.TierHeader, p.Tier)
		}
	}
}

// newBackend returns the client of a route's backend: its endpoints
// balanced, each probed for health every health.interval, ejected and
// retried as health.outlier and health.retries say.
func (g *generation) newBackend(route config.Route) (*forward.Backend, error) {
	opts := []forward.BackendOption{
		forward.WithClientOptions(connect.WithInterceptors(g.telemetry.ClientInterceptor())),
		forward.WithBackendLogger(g.logger),
	}
	if interval := g.cfg.Health.ProbeInterval(); interval > 0 {
		opts = append(opts, forward.WithHealthCheck(interval))
	}
	protocol, err := forward.ParseProtocol(route.Protocol)
	if err != nil {
		return nil, err
	}
	opts = append(opts, forward.WithProtocol(protocol))
	tlsConfig, err := g.backendTLS(route)
	if err != nil {
		return nil, retryable{err} // its files may not be whole yet
	}
	if tlsConfig != nil {
		opts = append(opts, forward.WithTLSConfig(tlsConfig))
	}
	spread, err := g.balancing(route)
	if err != nil {
		return nil, err
	}
	opts = append(opts, spread...)
	targets := route.Endpoints
	if route.Backend != "" {
		targets = []string{route.Backend}
	}
	return forward.NewBackendEndpoints(targets, opts...)
}
