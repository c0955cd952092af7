package main

import (
	"os"
	"regexp"
	"sort"

	"github.com/google/pprof/profile"
)

// share is the part of the gateway's CPU profile spent in one layer.
type share struct {
	Layer   string  `json:"layer"`
	Percent float64 `json:"percent"`
}

// layers name where a sample's time went, by the innermost frame that
// belongs to one of them: a sample in a syscall made by the HTTP/2 client
// counts for the HTTP/2 client, one in otelconnect's call to our code for
// our code. Checked in order for each frame, from the leaf up.
var layers = []struct {
	name string
	re   *regexp.Regexp
}{
	{"OpenTelemetry (otelconnect, SDK, OTLP export)", regexp.MustCompile(`^(go\.opentelemetry\.io|connectrpc\.com/otelconnect)`)},
	{"portcullis telemetry", regexp.MustCompile(`^github\.com/portcullis/portcullis/gateway/telemetry\.`)},
	{"portcullis authz, token, catalog", regexp.MustCompile(`^github\.com/portcullis/portcullis/gateway/(authz|token|catalog)\.`)},
	{"portcullis ratelimit", regexp.MustCompile(`^github\.com/portcullis/portcullis/gateway/ratelimit\.`)},
	{"portcullis forward", regexp.MustCompile(`^github\.com/portcullis/portcullis/gateway/forward\.`)},
	{"connect-go", regexp.MustCompile(`^connectrpc\.com/connect\.`)},
	{layerHTTPServer, regexp.MustCompile(`^net/http\.`)}, // or the client's: see layerOf
	{"protobuf", regexp.MustCompile(`^google\.golang\.org/protobuf/`)},
	{"Go scheduler", regexp.MustCompile(`^runtime\.(mcall|schedule|findRunnable|park_m|goexit0)$`)},
}

var (
	// A sample anywhere under these is the garbage collector's.
	gcFrame = regexp.MustCompile(`^runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge)`)
	// A net/http sample with one of these on its stack is the client's.
	http2ClientFrame = regexp.MustCompile(`^net/http\.(\(\*http2clientStream\)|\(\*http2ClientConn\)|\(\*http2clientConnReadLoop\)|\(\*Transport\)|\(\*http2Transport\))`)
)

const (
	layerGC         = "garbage collector"
	layerHTTPServer = "net/http HTTP/2 server (from clients)"
	layerHTTPClient = "net/http HTTP/2 client (to the backend)"
	layerOther      = "other (runtime, syscalls of no layer above)"
)

// breakdown reads a CPU profile and returns the share of each layer, the
// largest first.
func breakdown(file string) ([]share, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, err
	}
	cpu := len(p.SampleType) - 1 // "cpu" nanoseconds, after "samples"
	var total int64
	byLayer := map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[cpu]
		total += v
		byLayer[layerOf(s)] += v
	}
	shares := make([]share, 0, len(byLayer))
	for layer, v := range byLayer {
		if total > 0 {
			shares = append(shares, share{Layer: layer, Percent: 100 * float64(v) / float64(total)})
		}
	}
	sort.Slice(shares, func(i, j int) bool {
		if shares[i].Percent != shares[j].Percent {
			return shares[i].Percent > shares[j].Percent
		}
		return shares[i].Layer < shares[j].Layer
	})
	return shares, nil
}

func layerOf(s *profile.Sample) string {
	var frames []string // leaf first
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				frames = append(frames, line.Function.Name)
			}
		}
	}
	if anyFrame(frames, gcFrame) {
		return layerGC
	}
	for _, f := range frames {
		for _, l := range layers {
			if !l.re.MatchString(f) {
				continue
			}
			if l.name == layerHTTPServer && anyFrame(frames, http2ClientFrame) {
				return layerHTTPClient
			}
			return l.name
		}
	}
	return layerOther
}

// anyFrame reports whether any of frames matches re.
func anyFrame(frames []string, re *regexp.Regexp) bool {
	for _, f := range frames {
		if re.MatchString(f) {
			return true
		}
	}
	return false
}
