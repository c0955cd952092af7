package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the gateway raises the collector's target unless the
// operator chose one with GOGC.
func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	operator := func(key string) (string, bool) {
		if key == "GOGC" {
			return "150", true
		}
		return "", false
	}
	if tuneGC(operator) {
		t.Error("tuneGC overrode the operator's GOGC")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent = %d after an operator's GOGC, want it left at 100", got)
	}

	unset := func(string) (string, bool) { return "", false }
	if !tuneGC(unset) {
		t.Error("tuneGC left GOGC alone when the environment does not set it")
	}
	if got := debug.SetGCPercent(100); got != gatewayGOGC {
		t.Errorf("GC percent = %d without GOGC, want %d", got, gatewayGOGC)
	}
}
