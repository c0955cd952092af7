package telemetry

import (
	"context"
	"fmt"
	"net/http"
)

// WrapGeneration is [Telemetry.WrapHandler] for a handler built from one
// configuration generation: every call it serves is recorded with that
// generation, as the attribute portcullis.generation of its server span and
// the field generation of its access line, so that a decision can be traced
// to the configuration that made it. Generation 0 records none.
func (t *Telemetry) WrapGeneration(h http.Handler, generation uint64) http.Handler {
	if t == nil || h == nil {
		return h
	}
	return &edgeHandler{t: t, next: h, generation: generation}
}

// StartCall starts the record of a call that no [Telemetry.WrapHandler]
// serves, one a grpc-go server took: the call's clock starts now, and it
// is recorded with the configuration generation, as WrapGeneration records
// its calls (0 records none). A gate wrapped with [Telemetry.WrapGate] and
// [Telemetry.ServerInterceptor] record it, as they record every call.
func (t *Telemetry) StartCall(ctx context.Context, generation uint64) context.Context {
	if t == nil {
		return ctx
	}
	return &call{Context: ctx, start: t.cfg.now(), generation: generation}
}

// AddProcedures names more procedures the gateway serves, as
// [WithProcedures] does at New: for a configuration that changed while
// the gateway runs. Procedures named before stay known.
func (t *Telemetry) AddProcedures(procedures ...string) error {
	for _, p := range procedures {
		if !isProcedure(p) {
			return fmt.Errorf("telemetry: procedure %q is not of the form /package.Service/Method", p)
		}
	}
	for _, p := range procedures {
		t.procedures.get(p)
	}
	return nil
}
