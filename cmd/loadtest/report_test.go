package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	t.Parallel()
	unary := scenario{kind: "unary", protocol: "grpc", size: small, concurrency: 16}
	fresh := unary
	fresh.freshToken = true
	bidi := scenario{kind: "bidi", protocol: "grpc", size: small, concurrency: 8}
	res := func(sc scenario, t target, rps float64, p50 time.Duration, gwCPU, beCPU float64) result {
		return result{Scenario: sc.name(), Kind: sc.kind, Protocol: sc.protocol, Size: sc.size, Concurrency: sc.concurrency,
			FreshToken: sc.freshToken, Target: t, Calls: 1000, PerSecond: rps, P50: p50, P90: 2 * p50, P99: 3 * p50,
			GatewayCPU: gwCPU, BackendCPU: beCPU}
	}
	r := newReport([]result{
		res(unary, direct, 4000, time.Millisecond, 0, 0.100),
		res(unary, viaGateway, 2000, 3*time.Millisecond, 0.150, 0.100),
		res(fresh, viaGateway, 1000, 6*time.Millisecond, 0.400, 0.100),
		res(bidi, direct, 10000, 0, 0, 0.010),
		res(bidi, viaGateway, 8000, 0, 0.012, 0.010),
	}, time.Minute)
	if md := r.markdown("benchmarks"); strings.Contains(md, "environment") {
		t.Errorf("markdown names a gateway environment that was not set:\n%s", md)
	}
	r.GatewayEnv = []string{"GOGC=100"}
	md := r.markdown("benchmarks")
	for _, want := range []string{
		"| unary grpc 100B c=16 | 4000 | 2000 | 0.50× | 1.00 / 2.00 / 3.00 | 3.00 / 6.00 / 9.00 | 2.00 | 0.100 | 0.150 | 1.50× |",
		"| unary grpc 100B c=16 fresh-token | 1000 | 2000 | 6.00 | 3.00 | 0.400 | 0.150 |",
		"| bidi grpc 100B c=8 | 10000 | 8000 | 0.80× | 0.0100 | 0.0120 |",
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
		if strings.HasSuffix(name, ".svg") && (!strings.HasPrefix(string(data), "<svg") || !strings.Contains(string(data), "unary grpc 100B c=16")) {
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
	if strings.Contains(string(updated), "old table") || !strings.Contains(string(updated), "| unary grpc 100B c=16 | 4000") ||
		!strings.HasPrefix(string(updated), "# Title") || !strings.HasSuffix(string(updated), endMarker+"\n\nAfter.\n") {
		t.Errorf("updated document:\n%s", updated)
	}
}
