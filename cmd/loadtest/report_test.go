package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReport: the lead table holds medians over the cycles of each
// cycle's ratio, not ratios of medians; a cycle that missed a target counts
// for nothing.
func TestReport(t *testing.T) {
	t.Parallel()
	unary := scenario{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 16, generator: genH2load}
	wide := scenario{kind: "unary", protocol: "connect", size: small, conns: 4, streams: 16, freshToken: true, generator: genConnect}
	bidi := scenario{kind: "bidi", protocol: "grpc", size: small, conns: 1, streams: 8, generator: genConnect}
	res := func(sc scenario, t target, cycle int, rps float64, p50 time.Duration, proxyCPU, beCPU float64) result {
		return result{Scenario: sc.name(), Kind: sc.kind, Protocol: sc.protocol, Size: sc.size, Conns: sc.conns, Streams: sc.streams,
			FreshToken: sc.freshToken, Generator: sc.generator, Target: t, Cycle: cycle, Calls: 1000, PerSecond: rps,
			P50: p50, P90: 2 * p50, P99: 3 * p50, ProxyCPU: proxyCPU, BackendCPU: beCPU}
	}
	var results []result
	// Three cycles: CPU ratios 2.0, 1.0 and 1.5 (median 1.5, while the
	// ratio of the median CPUs would be 0.30 / 0.20 = 1.5 too, so the
	// calls/s ratios tell them apart: 0.5, 0.25, 1.0, median 0.5 against
	// 2000 / 4000).
	for i, c := range []struct {
		gwCPU, hpCPU, gwRPS, hpRPS float64
	}{{0.400, 0.200, 2000, 4000}, {0.200, 0.200, 1000, 4000}, {0.300, 0.200, 4000, 4000}} {
		cycle := i + 1
		results = append(results,
			res(unary, direct, cycle, 8000, time.Millisecond, 0, 0.100),
			res(unary, viaGateway, cycle, c.gwRPS, 3*time.Millisecond, c.gwCPU, 0.100),
			res(unary, viaHAProxy, cycle, c.hpRPS, 2*time.Millisecond, c.hpCPU, 0.100),
			res(bidi, direct, cycle, 10000, 0, 0, 0.010),
			res(bidi, viaGateway, cycle, 8000, 0, 0.012, 0.010),
			res(bidi, viaHAProxy, cycle, 9000, 0, 0.004, 0.010),
		)
	}
	// A scenario whose HAProxy run is missing: its ratios to HAProxy are "-".
	results = append(results,
		res(wide, direct, 1, 8000, time.Millisecond, 0, 0.100),
		res(wide, viaGateway, 1, 4000, 2*time.Millisecond, 0.300, 0.100))
	r := newReport(results, time.Minute)
	r.Cycles = 3
	r.Instructions = []instructionCount{
		{Scenario: "unary grpc c=1 reused", Target: viaGateway, Calls: 1000, PerCall: []float64{700000, 690000, 710000}},
		{Scenario: "unary grpc c=1 reused", Target: viaHAProxy, Calls: 1000, PerCall: []float64{350000, 350000, 350000}},
	}
	if md := r.markdown("benchmarks"); strings.Contains(md, "environment") {
		t.Errorf("markdown names a gateway environment that was not set:\n%s", md)
	}
	r.GatewayEnv = []string{"GOGC=100"}
	md := r.markdown("benchmarks")
	for _, want := range []string{
		"| unary grpc c=16 reused | h2load | 1.50× | 0.50× | +2.00 / +6.00 | +1.00 / +3.00 | 0.25× |",
		"| unary connect c=4×16 fresh | connect-go | - | - | +1.00 / +3.00 | - / - | 0.50× |",
		"| bidi grpc c=8 | 0.80× | 0.90× | 10000 | 8000 | 9000 | 12.0 | 4.0 |",
		"| unary grpc c=1 reused | 1000 | 700000 | 350000 | 2.00× | 700000, 690000, 710000 |",
		"| unary grpc c=16 reused | 8000 / 2000 / 4000 | 1.00 / 3.00 / 2.00 | 3.00 / 9.00 / 6.00 | 100 / 300 / 200 | 0% / 0% |",
		"![latency](benchmarks/latency.svg)",
		"The gateway ran with `GOGC=100` in its environment.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"results.json", "results.md", "latency.svg", "cpu.svg"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(data) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(data))
		}
		if strings.HasSuffix(name, ".svg") && (!strings.HasPrefix(string(data), "<svg") || !strings.Contains(string(data), "unary grpc c=16 reused")) {
			t.Errorf("%s is not a plot of the scenarios", name)
		}
	}

	doc := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(doc, []byte("# Title\n\n"+beginMarker+"\nold table\n"+endMarker+"\n\nAfter.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.updateMarkdown(doc, "benchmarks"); err != nil {
		t.Fatal(err)
	}
	updated, _ := os.ReadFile(doc)
	if strings.Contains(string(updated), "old table") || !strings.Contains(string(updated), "| unary grpc c=16 reused | h2load | 1.50×") ||
		!strings.HasPrefix(string(updated), "# Title") || !strings.HasSuffix(string(updated), endMarker+"\n\nAfter.\n") {
		t.Errorf("updated document:\n%s", updated)
	}
}

// TestWithGODEBUG: a setting joins the GODEBUG the caller gave.
func TestWithGODEBUG(t *testing.T) {
	t.Parallel()
	if got := withGODEBUG([]string{"GOGC=100"}, "asyncpreemptoff=1"); strings.Join(got, " ") != "GOGC=100 GODEBUG=asyncpreemptoff=1" {
		t.Errorf("without GODEBUG: %q", got)
	}
	if got := withGODEBUG([]string{"GODEBUG=adaptivestackstart=1"}, "asyncpreemptoff=1"); strings.Join(got, " ") != "GODEBUG=adaptivestackstart=1,asyncpreemptoff=1" {
		t.Errorf("with GODEBUG: %q", got)
	}
}
