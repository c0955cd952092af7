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

// instructionCount is the gateway's instructions per call in one load.
type instructionCount struct {
	Scenario string `json:"scenario"`
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
	outFile := filepath.Join(dir, "callgrind.out")
	log.Printf("starting the gateway under callgrind")
	stack, err := startStack(ctx, bin, dir, stackOptions{
		// Go preempts goroutines with signals, which callgrind 3.19
		// cannot follow; cooperative preemption is enough for a server.
		gatewayEnv:  append(slices.Clone(opts.gatewayEnv), "GODEBUG=asyncpreemptoff=1"),
		gatewayWrap: []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + outFile, "--dump-instr=no", "--dump-line=no"},
		traceRatio:  opts.traceRatio,
		noHAProxy:   true,
		ready:       3 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	defer stack.stop()
	pid := strconv.Itoa(stack.gateway.cmd.Process.Pid)

	var counts []instructionCount
	for _, sc := range instructionScenarios {
		c := instructionCount{Scenario: sc.name(), Calls: opts.instructions}
		call, err := stack.caller(sc)
		if err != nil {
			return nil, err
		}
		if err := call(ctx, 200); err != nil { // warm-up
			return nil, fmt.Errorf("%s: warm-up: %w", sc.name(), err)
		}
		for rep := range instructionReps {
			if err := callgrindControl(ctx, "-z", pid); err != nil {
				return nil, err
			}
			if err := call(ctx, opts.instructions); err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name(), err)
			}
			total, err := callgrindDump(ctx, pid, outFile)
			if err != nil {
				return nil, err
			}
			c.PerCall = append(c.PerCall, float64(total)/float64(opts.instructions))
			log.Printf("%s: repetition %d: %.0f instructions per call", sc.name(), rep+1, c.PerCall[rep])
		}
		counts = append(counts, c)
	}
	return counts, nil
}

// caller returns a function making n calls of sc through the gateway, one
// at a time, failing at the first error.
func (s *stack) caller(sc scenario) (func(ctx context.Context, n int) error, error) {
	var opts []connect.ClientOption
	if sc.protocol == "grpc" {
		opts = append(opts, connect.WithGRPC())
	}
	client := ordersv1connect.NewOrdersServiceClient(newHTTPClient(), s.gatewayURL, opts...)
	reused, err := s.tokens.token(claims{})
	if err != nil {
		return nil, err
	}
	order := s.order(sc)
	return func(ctx context.Context, n int) error {
		toks := []string{reused}
		if sc.freshToken {
			// Minted before the calls: the gateway's count must not
			// depend on the generator.
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

// instructionsMarkdown is the table of instruction counts.
func instructionsMarkdown(counts []instructionCount) string {
	var b strings.Builder
	b.WriteString("| load (through the gateway, one call at a time) | calls | instructions per call (median) | repetitions |\n")
	b.WriteString("|---|---:|---:|---|\n")
	for _, c := range counts {
		reps := make([]string, len(c.PerCall))
		for i, v := range c.PerCall {
			reps[i] = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s |\n", c.Scenario, c.Calls, c.median(), strings.Join(reps, ", "))
	}
	return b.String()
}
