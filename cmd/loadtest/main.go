// Command loadtest measures what the gateway costs: it starts an example
// backend and a gateway as separate processes, drives both with connect-go
// clients in one run, scenario by scenario and interleaved (direct, then
// through the gateway), and reports requests per second, latency
// percentiles, and the CPU seconds each process spent per 1,000 calls.
//
//	go run ./cmd/loadtest -out benchmarks -update BENCHMARKS.md
//
// It writes benchmarks/results.json, benchmarks/results.md and two plots
// (latency.svg, cpu.svg), and with -update replaces the results section of
// a Markdown file. Every process shares this machine's cores with the load
// generator: read the figures as ratios, not absolutes.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	var opts options
	flag.StringVar(&opts.bin, "bin", "", "the portcullis binary (default: build ./cmd/portcullis)")
	flag.StringVar(&opts.out, "out", "benchmarks", "directory for results.json, results.md and the plots")
	flag.StringVar(&opts.update, "update", "", "a Markdown file whose results section to replace")
	flag.DurationVar(&opts.duration, "duration", 3*time.Second, "measured time per scenario and target")
	flag.DurationVar(&opts.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each measurement")
	flag.BoolVar(&opts.quick, "quick", false, "a few short scenarios, to check the harness")
	flag.StringVar(&opts.cpuprofile, "cpuprofile", "", "write a CPU profile of the gateway, taken in an extra, unreported run of unary connect 100B c=16, to this file")
	flag.Func("gateway-env", "`KEY=VALUE` added to the gateway's environment, e.g. GOGC=100 (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		opts.gatewayEnv = append(opts.gatewayEnv, v)
		return nil
	})
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, opts); err != nil {
		log.Fatalf("loadtest: %v", err)
	}
}

// profiledScenario is the load under which -cpuprofile profiles the gateway.
var profiledScenario = scenario{kind: "unary", protocol: "connect", size: small, concurrency: 16}

type options struct {
	bin, out, update string
	cpuprofile       string
	duration, warmup time.Duration
	quick            bool
	gatewayEnv       []string
}

func run(ctx context.Context, opts options) error {
	work, err := os.MkdirTemp("", "portcullis-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if opts.bin == "" {
		opts.bin = filepath.Join(work, "portcullis")
		log.Printf("building portcullis")
		if err := build(ctx, opts.bin); err != nil {
			return err
		}
	}
	stack, err := startStack(ctx, opts.bin, work, opts.gatewayEnv)
	if err != nil {
		return err
	}
	defer stack.stop()

	scenarios := allScenarios(opts.quick)
	results := make([]result, 0, 2*len(scenarios))
	started := time.Now()
	for i, sc := range scenarios {
		for _, target := range []target{direct, viaGateway} {
			if sc.freshToken && target == direct {
				continue // the backend does not verify tokens
			}
			log.Printf("[%d/%d] %s %s", i+1, len(scenarios), sc.name(), target)
			r, err := stack.measure(ctx, sc, target, opts.warmup, opts.duration, "")
			if err != nil {
				return fmt.Errorf("%s %s: %w", sc.name(), target, err)
			}
			results = append(results, r)
		}
	}
	report := newReport(results, time.Since(started))
	report.GatewayEnv = opts.gatewayEnv
	if opts.cpuprofile != "" {
		// An extra run, left out of the report: profiling costs CPU.
		sc := profiledScenario
		log.Printf("profiling the gateway: %s", sc.name())
		if _, err := stack.measure(ctx, sc, viaGateway, opts.warmup, opts.duration, opts.cpuprofile); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		if report.Profile, err = breakdown(opts.cpuprofile); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	if err := report.write(opts.out); err != nil {
		return err
	}
	if opts.update != "" {
		if err := report.updateMarkdown(opts.update, opts.out); err != nil {
			return err
		}
	}
	fmt.Print(report.markdown(opts.out))
	return nil
}
