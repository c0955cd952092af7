// Command loadtest measures what the gateway costs, beside a peer: it
// starts an example backend, the gateway and HAProxy configured with the
// same policy (JWT verification, the AND check of the method's masks, a
// per-client rate limit) as separate processes, and drives them in one run:
// each scenario direct to the backend, through the gateway and through
// HAProxy, back to back, in several cycles. gRPC unary calls come from
// h2load, Connect calls, fresh tokens and streams from connect-go clients.
// It reports calls per second, latency percentiles and the CPU time each
// process spent per call, read from /proc, as medians over the cycles of
// the per-cycle ratios of the gateway to HAProxy and to direct calls.
//
//	go run ./cmd/loadtest -out benchmarks -update BENCHMARKS.md
//
// It writes benchmarks/results.json, benchmarks/results.md and two plots
// (latency.svg, cpu.svg), and with -update replaces the results section of
// a Markdown file. Every process shares this machine's cores with the load
// generator: read the figures as ratios, not absolutes. With -instructions
// N it also counts the instructions the gateway executes per call, under
// valgrind's callgrind, a figure that does not depend on the machine's load;
// -instructions-only counts them and prints nothing else. With -experiment,
// candidates for the gateway's request path run beside it in the same
// cycles and are reported as ratios to it (experiment.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		if serve, ok := subcommands[os.Args[1]]; ok {
			subcommandMain(os.Args[1], serve)
			return
		}
	}
	var opts options
	flag.StringVar(&opts.bin, "bin", "", "the portcullis binary (default: build ./cmd/portcullis)")
	flag.StringVar(&opts.out, "out", "benchmarks", "directory for results.json, results.md and the plots")
	flag.StringVar(&opts.update, "update", "", "a Markdown file whose results section to replace")
	flag.DurationVar(&opts.duration, "duration", time.Second, "measured time per scenario, target and cycle")
	flag.DurationVar(&opts.warmup, "warmup", 300*time.Millisecond, "unmeasured time before each measurement")
	flag.IntVar(&opts.cycles, "cycles", 5, "times every scenario is measured against every target, interleaved")
	flag.BoolVar(&opts.quick, "quick", false, "a few short scenarios, to check the harness")
	flag.Float64Var(&opts.traceRatio, "trace-ratio", 0, "the gateway's trace_sample_ratio (HAProxy traces nothing)")
	flag.StringVar(&opts.cpuprofile, "cpuprofile", "", "write a CPU profile of the gateway, taken in an extra, unreported run of "+profiledScenario.name()+", to this file, and a profile of its allocations over the same time to this file + .allocs")
	flag.StringVar(&opts.profileScenario, "profile-scenario", "", "with -cpuprofile, profile this scenario (a name as the report gives it, e.g. \"bidi grpc c=8\") instead")
	flag.StringVar(&opts.profileTarget, "profile-target", string(viaGateway), "with -cpuprofile, profile this target instead: an experiment that runs the gateway (grpc-listen, before, env:...)")
	flag.DurationVar(&opts.profileDuration, "profile-duration", 10*time.Second, "how long -cpuprofile profiles")
	flag.IntVar(&opts.instructions, "instructions", 0, "count the gateway's instructions per call under callgrind over this many calls (0: do not)")
	flag.StringVar(&opts.callgrindDir, "callgrind-out", "", "keep callgrind's dumps (one per process and repetition) in this directory, for callgrind_annotate")
	flag.BoolVar(&opts.instructionsOnly, "instructions-only", false, "only count instructions per call (-instructions calls, default 1000), print them and exit")
	flag.StringVar(&opts.experiment, "experiment", "", "measure these experiments beside the gateway, comma-separated: "+experimentNames())
	flag.StringVar(&opts.baseline, "baseline", "", "the commit the before experiment builds the gateway from")
	flag.Func("only", "measure only the scenarios whose names match this `regexp`", func(v string) error {
		re, err := regexp.Compile(v)
		opts.only = re
		return err
	})
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
var profiledScenario = scenario{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 16, generator: genH2load}

type options struct {
	bin, out, update string
	cpuprofile       string
	profileTarget    string
	profileScenario  string
	profileDuration  time.Duration
	duration, warmup time.Duration
	cycles           int
	quick            bool
	traceRatio       float64
	gatewayEnv       []string
	instructions     int
	instructionsOnly bool
	experiment       string
	exps             []experiment // named by experiment
	callgrindDir     string
	baseline         string // a commit: the before experiment's gateway
	baselineBin      string // built from baseline
	only             *regexp.Regexp
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
	if opts.exps, err = experimentsNamed(opts.experiment); err != nil {
		return err
	}
	if opts.baseline != "" {
		if opts.baselineBin, err = buildBaseline(ctx, opts.baseline, work); err != nil {
			return err
		}
	}
	if opts.instructionsOnly {
		if opts.instructions == 0 {
			opts.instructions = 1000
		}
		counts, err := countInstructions(ctx, opts.bin, work, opts)
		if err != nil {
			return err
		}
		fmt.Print(instructionsMarkdown(counts))
		return nil
	}
	stack, err := startStack(ctx, opts.bin, work, stackOptions{gatewayEnv: opts.gatewayEnv, traceRatio: opts.traceRatio})
	if err != nil {
		return err
	}
	defer stack.stop()
	extra, err := stack.startExperiments(ctx, opts)
	if err != nil {
		return err
	}
	runTargets := append(slices.Clone(targets), extra...)
	for _, t := range runTargets[1:] {
		if err := stack.checkPolicy(ctx, t); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
	}

	scenarios := allScenarios(opts.quick)
	if opts.only != nil {
		scenarios = slices.DeleteFunc(scenarios, func(sc scenario) bool { return !opts.only.MatchString(sc.name()) })
	}
	results := make([]result, 0, opts.cycles*len(targets)*len(scenarios))
	started := time.Now()
	for cycle := 1; cycle <= opts.cycles; cycle++ {
		for i, sc := range scenarios {
			for _, t := range runTargets {
				if !serves(t, sc.protocol) {
					continue
				}
				log.Printf("cycle %d/%d [%d/%d] %s %s", cycle, opts.cycles, i+1, len(scenarios), sc.name(), t)
				r, err := stack.measure(ctx, sc, t, opts.warmup, opts.duration, "")
				if err != nil {
					return fmt.Errorf("cycle %d: %s %s: %w", cycle, sc.name(), t, err)
				}
				r.Cycle = cycle
				results = append(results, r)
			}
		}
	}
	report := newReport(results, time.Since(started))
	report.GatewayEnv = opts.gatewayEnv
	report.TraceRatio = opts.traceRatio
	report.Cycles = opts.cycles
	if opts.cpuprofile != "" {
		// An extra run, left out of the report: profiling costs CPU.
		sc := profiledScenario
		if opts.profileScenario != "" {
			all := allScenarios(false)
			i := slices.IndexFunc(all, func(s scenario) bool { return s.name() == opts.profileScenario })
			if i < 0 {
				return fmt.Errorf("-profile-scenario: no scenario is named %q", opts.profileScenario)
			}
			sc = all[i]
		}
		log.Printf("profiling %s: %s", opts.profileTarget, sc.name())
		if _, err := stack.measure(ctx, sc, target(opts.profileTarget), opts.warmup, opts.profileDuration, opts.cpuprofile); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		report.Profiled, report.ProfiledGenerator = sc.name(), sc.generator
		if report.Profile, err = breakdown(opts.cpuprofile); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	stack.stop()
	if opts.instructions > 0 {
		if report.Instructions, err = countInstructions(ctx, opts.bin, work, opts); err != nil {
			return fmt.Errorf("instructions: %w", err)
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
