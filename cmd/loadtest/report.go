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
	// GatewayEnv is what -gateway-env added to the gateway's environment.
	GatewayEnv []string `json:"gateway_env,omitempty"`
	// Profile is where the gateway's CPU went under -cpuprofile's load.
	Profile []share `json:"gateway_profile,omitempty"`
}

func newReport(results []result, took time.Duration) *report {
	return &report{Results: results, Took: took, CPUs: runtime.NumCPU(), GoOS: runtime.GOOS + "/" + runtime.GOARCH, Recorded: time.Now().UTC()}
}

// pair is a scenario measured direct and through the gateway.
type pair struct {
	direct, gateway *result
}

func (r *report) pairs(kind string, fresh bool) []pair {
	var out []pair
	index := map[string]int{}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Kind != kind || res.FreshToken != fresh {
			continue
		}
		j, ok := index[res.Scenario]
		if !ok {
			j = len(out)
			index[res.Scenario] = j
			out = append(out, pair{})
		}
		if res.Target == direct {
			out[j].direct = res
		} else {
			out[j].gateway = res
		}
	}
	return out
}

// reused finds the reused-token twin of a fresh-token result.
func (r *report) reused(fresh *result) *result {
	for i := range r.Results {
		res := &r.Results[i]
		if !res.FreshToken && res.Target == viaGateway && res.Kind == fresh.Kind && res.Protocol == fresh.Protocol &&
			res.Size == fresh.Size && res.Concurrency == fresh.Concurrency {
			return res
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) markdown(outDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Recorded %s on %s with %d CPUs, in %s. Backend, gateway and load generator share those CPUs.\n\n",
		r.Recorded.Format("2006-01-02 15:04 MST"), r.GoOS, r.CPUs, r.Took.Round(time.Second))
	if len(r.GatewayEnv) > 0 {
		fmt.Fprintf(&b, "The gateway ran with `%s` in its environment.\n\n", strings.Join(r.GatewayEnv, " "))
	}
	b.WriteString("### Unary calls (PlaceOrder), reused token\n\n")
	b.WriteString("| scenario | direct req/s | gateway req/s | throughput | direct p50 / p90 / p99 ms | gateway p50 / p90 / p99 ms | added p50 ms | backend CPU s/1k | gateway CPU s/1k | gateway ÷ backend CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.pairs("unary", false) {
		if p.direct == nil || p.gateway == nil {
			continue
		}
		d, g := p.direct, p.gateway
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s | %s / %s / %s | %s / %s / %s | %s | %.3f | %.3f | %s |\n",
			d.Scenario, d.PerSecond, g.PerSecond, ratio(g.PerSecond, d.PerSecond),
			ms(d.P50), ms(d.P90), ms(d.P99), ms(g.P50), ms(g.P90), ms(g.P99), ms(g.P50-d.P50),
			d.BackendCPU, g.GatewayCPU, ratio(g.GatewayCPU, d.BackendCPU))
	}
	b.WriteString("\nCPU columns: CPU seconds per 1,000 calls; backend from the direct run, gateway from the run through it. ")
	b.WriteString("Throughput is gateway ÷ direct.\n\n")

	b.WriteString("### A fresh token per call (no verification cache) vs a reused one\n\n")
	b.WriteString("| scenario | fresh req/s | reused req/s | fresh p50 ms | reused p50 ms | fresh gateway CPU s/1k | reused gateway CPU s/1k |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.pairs("unary", true) {
		f := p.gateway
		if f == nil {
			continue
		}
		if u := r.reused(f); u != nil {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s | %s | %.3f | %.3f |\n",
				f.Scenario, f.PerSecond, u.PerSecond, ms(f.P50), ms(u.P50), f.GatewayCPU, u.GatewayCPU)
		}
	}

	b.WriteString("\n### Bidi streaming (SyncOrders), messages received per second\n\n")
	b.WriteString("| scenario | direct msg/s | gateway msg/s | throughput | backend CPU s/1k msgs | gateway CPU s/1k msgs |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, p := range r.pairs("bidi", false) {
		if p.direct == nil || p.gateway == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s | %.4f | %.4f |\n", p.direct.Scenario, p.direct.PerSecond, p.gateway.PerSecond,
			ratio(p.gateway.PerSecond, p.direct.PerSecond), p.direct.BackendCPU, p.gateway.GatewayCPU)
	}
	if len(r.Profile) > 0 {
		fmt.Fprintf(&b, "\n### Where the gateway's CPU goes (%s, profiled in an extra run)\n\n", profiledScenario.name())
		b.WriteString("| layer | share of the gateway's CPU |\n|---|---:|\n")
		for _, s := range r.Profile {
			fmt.Fprintf(&b, "| %s | %.1f%% |\n", s.Layer, s.Percent)
		}
		b.WriteString("\nEach profile sample counts for the innermost layer on its stack: a write syscall made by the HTTP/2 client counts for the client.\n")
	}
	fmt.Fprintf(&b, "\n![latency](%s) ![cpu](%s)\n", filepath.ToSlash(filepath.Join(outDir, "latency.svg")), filepath.ToSlash(filepath.Join(outDir, "cpu.svg")))
	return b.String()
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
)

func (r *report) latencyPlot() []byte {
	var groups []string
	var bars [][]bar
	for _, p := range r.pairs("unary", false) {
		if p.direct == nil || p.gateway == nil {
			continue
		}
		groups = append(groups, p.direct.Scenario)
		bars = append(bars, []bar{
			{value: ms64(p.direct.P50), color: blue}, {value: ms64(p.direct.P99), color: lightBlue},
			{value: ms64(p.gateway.P50), color: orange}, {value: ms64(p.gateway.P99), color: lightOrange},
		})
	}
	return barChart("Unary latency (ms): direct vs through the gateway", "ms", groups, bars, []bar{
		{label: "direct p50", color: blue}, {label: "direct p99", color: lightBlue},
		{label: "gateway p50", color: orange}, {label: "gateway p99", color: lightOrange},
	})
}

func (r *report) cpuPlot() []byte {
	var groups []string
	var bars [][]bar
	for _, p := range r.pairs("unary", false) {
		if p.direct == nil || p.gateway == nil {
			continue
		}
		groups = append(groups, p.direct.Scenario)
		bars = append(bars, []bar{{value: p.direct.BackendCPU * 1000, color: blue}, {value: p.gateway.GatewayCPU * 1000, color: orange}})
	}
	return barChart("CPU per call (ms): the backend's own vs the gateway's", "ms", groups, bars, []bar{
		{label: "backend CPU per call", color: blue}, {label: "gateway CPU per call", color: orange},
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
