package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report turns results into tables and plots.
type report struct {
	Results  []result      `json:"results"`
	Took     time.Duration `json:"took_ns"`
	CPUs     int           `json:"cpus"`
	GoOS     string        `json:"goos"`
	Recorded time.Time     `json:"recorded"`
	Cycles   int           `json:"cycles"`
	// TraceRatio is the gateway's trace_sample_ratio.
	TraceRatio float64 `json:"trace_sample_ratio"`
	// GatewayEnv is what -gateway-env added to the gateway's environment.
	GatewayEnv []string `json:"gateway_env,omitempty"`
	// Profile is where the gateway's CPU went under -cpuprofile's load.
	Profile []share `json:"gateway_profile,omitempty"`
	// Profiled is the scenario profiled, and its load generator.
	Profiled          string `json:"profiled_scenario,omitempty"`
	ProfiledGenerator string `json:"profiled_generator,omitempty"`
	// Instructions are the gateway's instructions per call, with -instructions.
	Instructions []instructionCount `json:"instructions,omitempty"`
}

func newReport(results []result, took time.Duration) *report {
	return &report{Results: results, Took: took, CPUs: runtime.NumCPU(), GoOS: runtime.GOOS + "/" + runtime.GOARCH, Recorded: time.Now().UTC()}
}

// cycleSet is one scenario's results: by cycle, then by target.
type cycleSet struct {
	scenario  string
	generator string
	byCycle   map[int]map[target]*result
	cycles    []int
}

// scenarios groups the results of one kind by scenario, in the order run.
func (r *report) scenarios(kind string) []*cycleSet {
	var out []*cycleSet
	index := map[string]*cycleSet{}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Kind != kind {
			continue
		}
		set, ok := index[res.Scenario]
		if !ok {
			set = &cycleSet{scenario: res.Scenario, generator: res.Generator, byCycle: map[int]map[target]*result{}}
			index[res.Scenario] = set
			out = append(out, set)
		}
		if set.byCycle[res.Cycle] == nil {
			set.byCycle[res.Cycle] = map[target]*result{}
			set.cycles = append(set.cycles, res.Cycle)
		}
		set.byCycle[res.Cycle][res.Target] = res
	}
	return out
}

// median over the cycles of f(results of the cycle), for the cycles that
// measured every target f needs (f returns false otherwise).
func (c *cycleSet) median(f func(m map[target]*result) (float64, bool)) (float64, bool) {
	var vs []float64
	for _, cycle := range c.cycles {
		if v, ok := f(c.byCycle[cycle]); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// ratioOf is a per-cycle ratio of a field of two targets.
func ratioOf(a, b target, field func(*result) float64) func(map[target]*result) (float64, bool) {
	return func(m map[target]*result) (float64, bool) {
		ra, rb := m[a], m[b]
		if ra == nil || rb == nil || field(rb) == 0 {
			return 0, false
		}
		return field(ra) / field(rb), true
	}
}

// added is a per-cycle latency added by a proxy over the direct call.
func added(t target, field func(*result) time.Duration) func(map[target]*result) (float64, bool) {
	return func(m map[target]*result) (float64, bool) {
		rt, rd := m[t], m[direct]
		if rt == nil || rd == nil {
			return 0, false
		}
		return ms64(field(rt) - field(rd)), true
	}
}

// value is a per-cycle figure of one target.
func value(t target, field func(*result) float64) func(map[target]*result) (float64, bool) {
	return func(m map[target]*result) (float64, bool) {
		if m[t] == nil {
			return 0, false
		}
		return field(m[t]), true
	}
}

func proxyCPU(r *result) float64   { return r.ProxyCPU }
func backendCPU(r *result) float64 { return r.BackendCPU }
func perSecond(r *result) float64  { return r.PerSecond }
func sysShare(r *result) float64   { return r.ProxySysShare }
func p50(r *result) time.Duration  { return r.P50 }
func p90(r *result) time.Duration  { return r.P90 }
func p99(r *result) time.Duration  { return r.P99 }
func p50ms(r *result) float64      { return ms64(r.P50) }
func p90ms(r *result) float64      { return ms64(r.P90) }
func p99ms(r *result) float64      { return ms64(r.P99) }

// fmtX formats a ratio, or "-" when it could not be measured.
func fmtX(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

// fmtF formats a figure with the given verb, or "-".
func fmtF(verb string, v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf(verb, v)
}

func (r *report) markdown(outDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Recorded %s on %s with %d CPUs, in %s: %d cycles, each measuring every scenario direct, through the gateway and through HAProxy, back to back. "+
		"Backend, gateway, HAProxy and load generator share those CPUs.",
		r.Recorded.Format("2006-01-02 15:04 MST"), r.GoOS, r.CPUs, r.Took.Round(time.Second), r.Cycles)
	fmt.Fprintf(&b, " The gateway's trace_sample_ratio was %g.\n\n", r.TraceRatio)
	if len(r.GatewayEnv) > 0 {
		fmt.Fprintf(&b, "The gateway ran with `%s` in its environment.\n\n", strings.Join(r.GatewayEnv, " "))
	}
	unary := r.scenarios("unary")

	b.WriteString("### The gateway against HAProxy with the same policy (unary PlaceOrder, 100 B)\n\n")
	b.WriteString("Medians over the cycles of each cycle's ratio. CPU per call is the proxy process's CPU time (user + system, from /proc) ÷ calls; ")
	b.WriteString("added latency is the proxy's percentile minus the direct call's, in ms.\n\n")
	b.WriteString("| scenario | load generator | CPU per call ÷ HAProxy's | calls/s ÷ HAProxy's | gateway added p50 / p99 ms | HAProxy added p50 / p99 ms | gateway calls/s ÷ direct |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	for _, c := range unary {
		cpu, cpuOK := c.median(ratioOf(viaGateway, viaHAProxy, proxyCPU))
		rps, rpsOK := c.median(ratioOf(viaGateway, viaHAProxy, perSecond))
		g50, g50OK := c.median(added(viaGateway, p50))
		g99, g99OK := c.median(added(viaGateway, p99))
		h50, h50OK := c.median(added(viaHAProxy, p50))
		h99, h99OK := c.median(added(viaHAProxy, p99))
		thr, thrOK := c.median(ratioOf(viaGateway, direct, perSecond))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s | %s / %s | %s |\n", c.scenario, c.generator, fmtX(cpu, cpuOK), fmtX(rps, rpsOK),
			fmtF("%+.2f", g50, g50OK), fmtF("%+.2f", g99, g99OK), fmtF("%+.2f", h50, h50OK), fmtF("%+.2f", h99, h99OK), fmtX(thr, thrOK))
	}

	bidi := r.scenarios("bidi")
	if len(bidi) > 0 {
		b.WriteString("\n### Bidi streaming (SyncOrders), messages received per second\n\n")
		b.WriteString("| scenario | gateway msg/s ÷ direct | HAProxy msg/s ÷ direct | direct msg/s | gateway msg/s | HAProxy msg/s | gateway CPU ms / 1k msgs | HAProxy CPU ms / 1k msgs |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range bidi {
			g, gOK := c.median(ratioOf(viaGateway, direct, perSecond))
			h, hOK := c.median(ratioOf(viaHAProxy, direct, perSecond))
			d, dOK := c.median(value(direct, perSecond))
			gr, grOK := c.median(value(viaGateway, perSecond))
			hr, hrOK := c.median(value(viaHAProxy, perSecond))
			gc, gcOK := c.median(value(viaGateway, proxyCPU))
			hc, hcOK := c.median(value(viaHAProxy, proxyCPU))
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.scenario, fmtX(g, gOK), fmtX(h, hOK),
				fmtF("%.0f", d, dOK), fmtF("%.0f", gr, grOK), fmtF("%.0f", hr, hrOK), fmtF("%.1f", gc*1000, gcOK), fmtF("%.1f", hc*1000, hcOK))
		}
	}

	for _, e := range experiments {
		if !r.has(e.target) {
			continue
		}
		x := e.target
		fmt.Fprintf(&b, "\n### Experiment %s against today's gateway, in the same cycles\n\n%s.\n\n", x, e.about)
		fmt.Fprintf(&b, "| scenario | %s CPU per call ÷ gateway's | %s CPU per call ÷ HAProxy's | %s calls/s ÷ gateway's | %s added p50 / p99 ms | gateway added p50 / p99 ms |\n", x, x, x, x)
		b.WriteString("|---|---:|---:|---:|---:|---:|\n")
		for _, c := range append(unary, bidi...) {
			cpu, cpuOK := c.median(ratioOf(x, viaGateway, proxyCPU))
			if !cpuOK {
				continue // a protocol it does not serve
			}
			hcpu, hcpuOK := c.median(ratioOf(x, viaHAProxy, proxyCPU))
			rps, rpsOK := c.median(ratioOf(x, viaGateway, perSecond))
			x50, x50OK := c.median(added(x, p50))
			x99, x99OK := c.median(added(x, p99))
			g50, g50OK := c.median(added(viaGateway, p50))
			g99, g99OK := c.median(added(viaGateway, p99))
			if strings.HasPrefix(c.scenario, "bidi") {
				x50OK, x99OK, g50OK, g99OK = false, false, false, false // streams have no latency here
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s | %s / %s |\n", c.scenario, fmtX(cpu, cpuOK), fmtX(hcpu, hcpuOK), fmtX(rps, rpsOK),
				fmtF("%+.2f", x50, x50OK), fmtF("%+.2f", x99, x99OK), fmtF("%+.2f", g50, g50OK), fmtF("%+.2f", g99, g99OK))
		}
	}

	if len(r.Instructions) > 0 {
		b.WriteString("\n### Instructions per call (callgrind; does not drift with the machine's load)\n\n")
		b.WriteString(instructionsMarkdown(r.Instructions))
	}

	b.WriteString("\n### The figures behind the ratios (medians over the cycles)\n\n")
	b.WriteString("| scenario | calls/s direct / gateway / HAProxy | p50 ms direct / gateway / HAProxy | p99 ms direct / gateway / HAProxy | CPU µs per call: backend / gateway / HAProxy | kernel's share of the CPU: gateway / HAProxy |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, c := range unary {
		three := func(verb string, field func(*result) float64, scale float64) string {
			var parts []string
			for _, t := range targets {
				v, ok := c.median(value(t, field))
				parts = append(parts, fmtF(verb, v*scale, ok))
			}
			return strings.Join(parts, " / ")
		}
		be, beOK := c.median(value(direct, backendCPU))
		gw, gwOK := c.median(value(viaGateway, proxyCPU))
		hp, hpOK := c.median(value(viaHAProxy, proxyCPU))
		gs, gsOK := c.median(value(viaGateway, sysShare))
		hs, hsOK := c.median(value(viaHAProxy, sysShare))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s / %s | %s / %s |\n", c.scenario, three("%.0f", perSecond, 1), three("%.2f", p50ms, 1), three("%.2f", p99ms, 1),
			fmtF("%.0f", be*1000, beOK), fmtF("%.0f", gw*1000, gwOK), fmtF("%.0f", hp*1000, hpOK), fmtF("%.0f%%", gs*100, gsOK), fmtF("%.0f%%", hs*100, hsOK))
	}
	b.WriteString("\nCPU per call: the backend's from the direct run, the gateway's and HAProxy's from the runs through them.\n")

	if len(r.Profile) > 0 {
		fmt.Fprintf(&b, "\n### Where the gateway's CPU goes (%s, %s, profiled in an extra run)\n\n", r.Profiled, r.ProfiledGenerator)
		b.WriteString("| layer | share of the gateway's CPU |\n|---|---:|\n")
		for _, s := range r.Profile {
			fmt.Fprintf(&b, "| %s | %.1f%% |\n", s.Layer, s.Percent)
		}
		b.WriteString("\nEach profile sample counts for the innermost layer on its stack: a write syscall made by the HTTP/2 client counts for the client.\n")
	}
	fmt.Fprintf(&b, "\n![latency](%s) ![cpu](%s)\n", filepath.ToSlash(filepath.Join(outDir, "latency.svg")), filepath.ToSlash(filepath.Join(outDir, "cpu.svg")))
	return b.String()
}

// has reports whether some result is of target t.
func (r *report) has(t target) bool {
	for i := range r.Results {
		if r.Results[i].Target == t {
			return true
		}
	}
	return false
}

func (r *report) write(outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"results.json": append(data, '\n'),
		"results.md":   []byte(r.markdown(".")),
		"latency.svg":  r.latencyPlot(),
		"cpu.svg":      r.cpuPlot(),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(outDir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const (
	beginMarker = "<!-- results:begin (written by go run ./cmd/loadtest -update) -->"
	endMarker   = "<!-- results:end -->"
)

// updateMarkdown replaces the section between the markers in file.
func (r *report) updateMarkdown(file, outDir string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	begin, end := bytes.Index(data, []byte(beginMarker)), bytes.Index(data, []byte(endMarker))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s has no results markers", file)
	}
	var b bytes.Buffer
	b.Write(data[:begin+len(beginMarker)])
	b.WriteString("\n")
	b.WriteString(r.markdown(outDir))
	b.Write(data[end:])
	return os.WriteFile(file, b.Bytes(), 0o644)
}

// bar is one bar of a horizontal bar chart.
type bar struct {
	label string
	value float64
	color string
}

// barChart draws groups of horizontal bars with a legend, as SVG.
func barChart(title, unit string, groups []string, bars [][]bar, legend []bar) []byte {
	const left, width, barH, gap, top = 230, 420, 11, 10, 48
	maxV := 0.0
	for _, g := range bars {
		for _, b := range g {
			maxV = math.Max(maxV, b.value)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	height := top + 20
	for _, g := range bars {
		height += len(g)*barH + gap
	}
	var s bytes.Buffer
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, left+width+90, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="18" font-size="14" font-weight="bold">%s</text>`, html.EscapeString(title))
	for i, l := range legend {
		x := 10 + i*150
		fmt.Fprintf(&s, `<rect x="%d" y="28" width="10" height="10" fill="%s"/><text x="%d" y="37">%s</text>`, x, l.color, x+14, html.EscapeString(l.label))
	}
	y := top
	for i, g := range bars {
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+len(g)*barH/2+4, html.EscapeString(groups[i]))
		for _, b := range g {
			w := b.value / maxV * width
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/><text x="%.1f" y="%d" font-size="9">%.3g %s</text>`,
				left, y, w, barH-1, b.color, float64(left)+w+3, y+barH-2, b.value, unit)
			y += barH
		}
		y += gap
	}
	s.WriteString("</svg>\n")
	return s.Bytes()
}

const (
	blue, lightBlue, orange, lightOrange = "#1f77b4", "#9ecae9", "#ff7f0e", "#fdd0a2"
	green, lightGreen                    = "#2ca02c", "#a1d99b"
)

var lightColors = []string{lightBlue, lightOrange, lightGreen}

// medians returns, for each unary scenario, the median over the cycles of
// field for each target.
func (r *report) medians(field func(*result) float64) (groups []string, values [][]float64) {
	for _, c := range r.scenarios("unary") {
		groups = append(groups, c.scenario)
		var row []float64
		for _, t := range targets {
			v, _ := c.median(value(t, field))
			row = append(row, v)
		}
		values = append(values, row)
	}
	return groups, values
}

var targetColors = []string{blue, orange, green}

func (r *report) latencyPlot() []byte {
	groups, values := r.medians(p50ms)
	_, v99 := r.medians(p99ms)
	var bars [][]bar
	for i := range values {
		var g []bar
		for j := range targets {
			g = append(g, bar{value: values[i][j], color: targetColors[j]}, bar{value: v99[i][j], color: lightColors[j]})
		}
		bars = append(bars, g)
	}
	return barChart("Unary latency (ms), p50 and p99: direct, through the gateway, through HAProxy", "ms", groups, bars, []bar{
		{label: "direct", color: blue}, {label: "gateway", color: orange}, {label: "HAProxy", color: green}, {label: "(light: p99)", color: lightBlue},
	})
}

func (r *report) cpuPlot() []byte {
	groups, proxy := r.medians(proxyCPU)
	_, backend := r.medians(backendCPU)
	var bars [][]bar
	for i := range proxy {
		bars = append(bars, []bar{
			{value: backend[i][0] * 1000, color: blue},
			{value: proxy[i][1] * 1000, color: orange},
			{value: proxy[i][2] * 1000, color: green},
		})
	}
	return barChart("CPU per call (µs): the backend's own, the gateway's, HAProxy's", "µs", groups, bars, []bar{
		{label: "backend", color: blue}, {label: "gateway", color: orange}, {label: "HAProxy", color: green},
	})
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
