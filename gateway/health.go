package gateway

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/portcullis/portcullis/gateway/forward"
)

// health answers grpc.health.v1.Health/Check on the main listener, for
// load balancers and orchestrators that speak gRPC health checking: the
// empty service name is the gateway itself, serving once it can verify
// tokens and until it starts draining; a routed service is serving when the
// gateway is and its backend is not failing. Other names are NotFound.
//
// Watch is not offered: a watcher would have to poll the same state, and
// clients that watch fall back to polling Check when it is unimplemented.
type health struct {
	g        *Gateway
	backends map[string]*forward.Backend // by routed service name
}

var _ grpchealth.Checker = (*health)(nil)

// Check implements [grpchealth.Checker].
func (h *health) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if req.Service == "" {
		return status(h.g.serving() == nil), nil
	}
	b, ok := h.backends[req.Service]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("service %q is not routed by this gateway", req.Service))
	}
	return status(h.g.serving() == nil && b.Err() == nil), nil
}

func status(ok bool) *grpchealth.CheckResponse {
	if ok {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}
}

// errDraining is what readiness and health say once the gateway has begun
// to stop.
var errDraining = errors.New("draining: the gateway is shutting down")

// serving returns nil while the gateway takes calls: its issuers' keys are
// in and it is not draining.
func (g *Gateway) serving() error {
	if g.draining.Load() {
		return errDraining
	}
	return g.Ready()
}

// failingBackends returns the error of each failing backend, by URL.
func (g *generation) failingBackends() map[string]string {
	failing := make(map[string]string)
	for _, b := range g.backends {
		if err := b.Err(); err != nil {
			failing[b.URL()] = err.Error()
		}
	}
	return failing
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
