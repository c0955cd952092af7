package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// A benchmark that cannot drift: the instructions the gateway process
// executes per call, counted by valgrind's callgrind on a fixed number of
// calls made one at a time. CPU time depends on what else runs on the
// machine, the CPU's frequency and caches; the instruction count depends
// only on the code (and, a little, on when the collector runs), so a change
// of a few percent shows from one commit to the next.
//
// The gateway starts under callgrind; after a warm-up its counters are
// zeroed (callgrind_control -z), N calls are made, and the counters are
// dumped (callgrind_control -d). The count covers every thread of the
// process: the HTTP/2 server and client, the policy, the runtime and the
// collector. perf stat -e instructions would do the same faster, where the
// machine exposes the counter; valgrind works everywhere.

// instructionCount is the instructions per call of one process in one load.
type instructionCount struct {
	Scenario string `json:"scenario"`
	Target   target `json:"target"`
	Calls    int    `json:"calls"`
	// PerCall are the instructions per call of each repetition.
	PerCall []float64 `json:"per_call"`
}

// median of the repetitions.
func (c instructionCount) median() float64 { return median(c.PerCall) }

// instructionReps is how many times each load is counted.
const instructionReps = 3

// instructionScenarios are the loads counted, one call at a time.
var instructionScenarios = []scenario{
	{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 1, generator: genConnect},
	{kind: "unary", protocol: "connect", size: small, conns: 1, streams: 1, generator: genConnect},
	{kind: "unary", protocol: "grpc", size: small, conns: 1, streams: 1, generator: genConnect, freshToken: true},
}

// countInstructions counts the instructions per call of the gateway and
// of HAProxy (and, with -experiment relay, of the relay), each under
// callgrind, in the loads of instructionScenarios.
func countInstructions(ctx context.Context, bin, work string, opts options) ([]instructionCount, error) {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed (make bench installs it: apt-get install valgrind): %w", tool, err)
		}
	}
	dir := filepath.Join(work, "callgrind")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	outFile := func(name string) string { return filepath.Join(dir, "callgrind.out."+name) }
	log.Printf("starting the gateway and HAProxy under callgrind")
	stack, err := startStack(ctx, bin, dir, stackOptions{
		// Go preempts goroutines with signals, which callgrind 3.19
		// cannot follow; cooperative preemption is enough for a server.
		gatewayEnv: withGODEBUG(opts.gatewayEnv, "asyncpreemptoff=1"),
		wrap: func(name string) []string {
			if name == "backend" {
				return nil
			}
			return []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + outFile(name), "--dump-instr=no", "--dump-line=no"}
		},
		traceRatio: opts.traceRatio,
		ready:      3 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	defer stack.stop()
	extra, err := stack.startExperiments(ctx, opts)
	if err != nil {
		return nil, err
	}
	runTargets := append([]target{viaGateway, viaHAProxy}, extra...)

	var counts []instructionCount
	for _, sc := range instructionScenarios {
		if opts.only != nil && !opts.only.MatchString(sc.name()) {
			continue
		}
		for _, t := range runTargets {
			if !serves(t, sc.protocol) {
				continue
			}
			p := stack.proxy(t)
			pid := strconv.Itoa(p.cmd.Process.Pid)
			c := instructionCount{Scenario: sc.name(), Target: t, Calls: opts.instructions}
			call, err := stack.caller(sc, t)
			if err != nil {
				return nil, err
			}
			if err := call(ctx, 200); err != nil { // warm-up
				return nil, fmt.Errorf("%s %s: warm-up: %w", sc.name(), t, err)
			}
			for rep := range instructionReps {
				if err := callgrindControl(ctx, "-z", pid); err != nil {
					return nil, err
				}
				if err := call(ctx, opts.instructions); err != nil {
					return nil, fmt.Errorf("%s %s: %w", sc.name(), t, err)
				}
				total, err := callgrindDump(ctx, pid, outFile(p.name))
				if err != nil {
					return nil, err
				}
				c.PerCall = append(c.PerCall, float64(total)/float64(opts.instructions))
				log.Printf("%s %s: repetition %d: %.0f instructions per call", sc.name(), t, rep+1, c.PerCall[rep])
			}
			counts = append(counts, c)
		}
	}
	if opts.callgrindDir != "" {
		if err := keepDumps(dir, opts.callgrindDir); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

// keepDumps copies callgrind's dumps, one per process and repetition, to
// dst, for callgrind_annotate: a profile of instructions, which the
// machine's load does not blur.
func keepDumps(dir, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	dumps, _ := filepath.Glob(filepath.Join(dir, "callgrind.out.*"))
	for _, f := range dumps {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// withGODEBUG returns env with setting added to its GODEBUG, or to a new
// one: of two GODEBUG variables, only the last would count.
func withGODEBUG(env []string, setting string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			out[i] = "GODEBUG=" + v + "," + setting
			return out
		}
	}
	return append(out, "GODEBUG="+setting)
}

// caller returns a function making n calls of sc to t, one at a time,
// failing at the first error.
func (s *stack) caller(sc scenario, t target) (func(ctx context.Context, n int) error, error) {
	var opts []connect.ClientOption
	if sc.protocol == "grpc" {
		opts = append(opts, connect.WithGRPC())
	}
	client := ordersv1connect.NewOrdersServiceClient(newHTTPClient(), s.url(t), opts...)
	reused, err := s.tokens.token(claims{})
	if err != nil {
		return nil, err
	}
	order := s.order(sc)
	return func(ctx context.Context, n int) error {
		toks := []string{reused}
		if sc.freshToken {
			// Minted before the calls: the count must not depend on the
			// generator.
			if toks, err = s.tokens.mint(n); err != nil {
				return err
			}
		}
		for i := range n {
			req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: order})
			req.Header().Set("Authorization", "Bearer "+toks[i%len(toks)])
			if _, err := client.PlaceOrder(ctx, req); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func callgrindControl(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "callgrind_control", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("callgrind_control %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// callgrindDump dumps the counters and returns the instructions counted
// since they were zeroed: the newest dump's totals.
func callgrindDump(ctx context.Context, pid, outFile string) (int64, error) {
	before, _ := filepath.Glob(outFile + ".*")
	if err := callgrindControl(ctx, "-d", pid); err != nil {
		return 0, err
	}
	for range 100 {
		after, _ := filepath.Glob(outFile + ".*")
		for _, f := range after {
			if slices.Contains(before, f) {
				continue
			}
			if n, err := callgrindTotal(f); err == nil {
				return n, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, errors.New("callgrind wrote no new dump")
}

// callgrindTotal reads the "totals:" (or "summary:") line of a dump.
func callgrindTotal(file string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	var total int64 = -1
	for sc.Scan() {
		line := sc.Text()
		for _, prefix := range []string{"totals:", "summary:"} {
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				fields := strings.Fields(rest)
				if len(fields) > 0 {
					if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
						total = n
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if total < 0 {
		return 0, fmt.Errorf("%s: no totals yet", file)
	}
	return total, nil
}

// instructionsMarkdown is the table of instruction counts: for each load,
// the gateway's, HAProxy's and each experiment's (when counted), medians
// of the repetitions, with their ratios.
func instructionsMarkdown(counts []instructionCount) string {
	var loads []string
	var extra []target
	byLoad := map[string]map[target]instructionCount{}
	for _, c := range counts {
		if byLoad[c.Scenario] == nil {
			byLoad[c.Scenario] = map[target]instructionCount{}
			loads = append(loads, c.Scenario)
		}
		byLoad[c.Scenario][c.Target] = c
		if c.Target != viaGateway && c.Target != viaHAProxy && !slices.Contains(extra, c.Target) {
			extra = append(extra, c.Target)
		}
	}
	var b strings.Builder
	b.WriteString("| load (one call at a time) | calls | gateway instructions per call | HAProxy's | gateway ÷ HAProxy |")
	for _, x := range extra {
		fmt.Fprintf(&b, " %s's | %s ÷ gateway |", x, x)
	}
	b.WriteString(" gateway's repetitions |\n|---|---:|---:|---:|---:|")
	for range extra {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---|\n")
	for _, load := range loads {
		m := byLoad[load]
		g, h := m[viaGateway], m[viaHAProxy]
		reps := make([]string, len(g.PerCall))
		for i, v := range g.PerCall {
			reps[i] = fmt.Sprintf("%.0f", v)
		}
		count := func(c instructionCount) string { return fmtF("%.0f", c.median(), len(c.PerCall) > 0) }
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |", load, max(g.Calls, h.Calls), count(g), count(h), fmtX(g.median()/h.median(), len(g.PerCall) > 0 && len(h.PerCall) > 0))
		for _, x := range extra {
			r := m[x]
			fmt.Fprintf(&b, " %s | %s |", count(r), fmtX(r.median()/g.median(), len(g.PerCall) > 0 && len(r.PerCall) > 0))
		}
		fmt.Fprintf(&b, " %s |\n", strings.Join(reps, ", "))
	}
	return b.String()
}
