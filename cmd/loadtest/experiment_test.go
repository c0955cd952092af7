package main

import (
	"strings"
	"testing"
	"time"
)

// TestExperimentsNamed: -experiment takes the registered candidates and
// env:KEY=VALUE variants of today's gateway, and refuses anything else.
func TestExperimentsNamed(t *testing.T) {
	t.Parallel()
	got, err := experimentsNamed("relay, grpc-go,env:GOMAXPROCS=1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, string(e.target))
	}
	if strings.Join(names, " ") != "relay grpc-go env:GOMAXPROCS=1" {
		t.Errorf("experiments = %v", names)
	}
	if serves("grpc-go", "connect") || !serves("grpc-go", "grpc") || !serves("env:GOMAXPROCS=1", "connect") || !serves(viaGateway, "connect") {
		t.Error("grpc-go serves gRPC alone; the gateway and its variants serve every protocol")
	}
	for _, bad := range []string{"nope", "env:", "env:=1", "env:NOEQUALS"} {
		if _, err := experimentsNamed(bad); err == nil {
			t.Errorf("experimentsNamed(%q) is accepted", bad)
		}
	}
}

// TestExperimentReport: each experiment gets its own table of per-cycle
// ratios to today's gateway, leaving out the scenarios it did not serve,
// and a column in the instruction counts.
func TestExperimentReport(t *testing.T) {
	t.Parallel()
	grpcSc := scenario{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 16, generator: genH2load}
	connectSc := scenario{kind: "unary", protocol: "connect", size: small, conns: 1, streams: 16, generator: genConnect}
	res := func(sc scenario, tg target, cycle int, cpu float64) result {
		return result{Scenario: sc.name(), Kind: sc.kind, Protocol: sc.protocol, Size: sc.size, Conns: sc.conns, Streams: sc.streams,
			Generator: sc.generator, Target: tg, Cycle: cycle, Calls: 1000, PerSecond: 1000 / cpu, P50: time.Millisecond, P99: time.Millisecond, ProxyCPU: cpu}
	}
	var results []result
	for cycle, x := range []float64{0.5, 0.4, 0.45} {
		results = append(results,
			res(grpcSc, direct, cycle+1, 0), res(grpcSc, viaGateway, cycle+1, 0.2), res(grpcSc, viaHAProxy, cycle+1, 0.1), res(grpcSc, "grpc-go", cycle+1, 0.2*x),
			res(connectSc, direct, cycle+1, 0), res(connectSc, viaGateway, cycle+1, 0.2), res(connectSc, viaHAProxy, cycle+1, 0.1),
		)
	}
	r := newReport(results, time.Minute)
	r.Instructions = []instructionCount{
		{Scenario: grpcSc.name(), Target: viaGateway, Calls: 1000, PerCall: []float64{600000, 610000, 590000}},
		{Scenario: grpcSc.name(), Target: viaHAProxy, Calls: 1000, PerCall: []float64{1000000}},
		{Scenario: grpcSc.name(), Target: "grpc-go", Calls: 1000, PerCall: []float64{300000}},
	}
	md := r.markdown("benchmarks")
	for _, want := range []string{
		"### Experiment grpc-go against today's gateway, in the same cycles",
		"| unary grpc c=16 reused | 0.45× | 0.90× | 2.22× |",
		"| grpc-go's | grpc-go ÷ gateway |",
		"| 600000 | 1000000 | 0.60× | 300000 | 0.50× |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	section := md[strings.Index(md, "### Experiment grpc-go"):]
	section = section[:strings.Index(section[1:], "###")+1]
	if strings.Contains(section, "unary connect") {
		t.Errorf("the experiment's table has a scenario it did not serve:\n%s", section)
	}
}
