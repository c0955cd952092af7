package telemetry

import (
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
