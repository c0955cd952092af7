package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// TestBreakdown: each sample counts for the innermost layer on its stack,
// the collector's work wherever it is, and net/http by which side it serves.
func TestBreakdown(t *testing.T) {
	stacks := []struct {
		nanos  int64
		frames []string // leaf first
	}{
		{400, []string{"internal/runtime/syscall/linux.Syscall6", "net.(*conn).Write", "net/http.(*http2clientStream).writeRequest", "connectrpc.com/connect.(*Client).CallUnary", "github.com/portcullis/portcullis/gateway/forward.(*method).unary"}},
		{300, []string{"net/http.(*http2Framer).WriteData", "net/http.(*http2serverConn).writeFrameAsync"}},
		{100, []string{"runtime.mallocgc", "github.com/portcullis/portcullis/gateway/authz.(*interceptor).WrapUnary.func1", "connectrpc.com/otelconnect.(*Interceptor).WrapUnary.func1"}},
		{100, []string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker"}},
		{50, []string{"go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End", "github.com/portcullis/portcullis/gateway/telemetry.(*decisionInterceptor).WrapUnary.func1"}},
		{50, []string{"runtime.futex"}},
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
	}
	functions := map[string]*profile.Function{}
	for _, st := range stacks {
		var locs []*profile.Location
		for _, name := range st.frames {
			fn := functions[name]
			if fn == nil {
				fn = &profile.Function{ID: uint64(len(functions) + 1), Name: name}
				functions[name] = fn
				p.Function = append(p.Function, fn)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{1, st.nanos}})
	}
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := breakdown(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []share{
		{layerHTTPClient, 40},
		{layerHTTPServer, 30},
		{layerGC, 10},
		{"portcullis authz, token, catalog", 10},
		{"OpenTelemetry (otelconnect, SDK, OTLP export)", 5},
		{layerOther, 5},
	}
	if len(got) != len(want) {
		t.Fatalf("breakdown = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Layer != want[i].Layer || got[i].Percent < want[i].Percent-1e-9 || got[i].Percent > want[i].Percent+1e-9 {
			t.Errorf("breakdown[%d] = %v, want %v", i, got[i], want[i])
		}
	}

	r := &report{Profile: got, Profiled: profiledScenario.name(), ProfiledGenerator: profiledScenario.generator}
	md := r.markdown("benchmarks")
	for _, line := range []string{"### Where the gateway's CPU goes (unary grpc c=16 reused, h2load", "| net/http HTTP/2 client (to the backend) | 40.0% |"} {
		if !strings.Contains(md, line) {
			t.Errorf("markdown lacks %q:\n%s", line, md)
		}
	}

	if _, err := breakdown(filepath.Join(t.TempDir(), "missing.pprof")); err == nil {
		t.Error("breakdown of a missing file: no error")
	}
}
