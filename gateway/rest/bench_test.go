package rest_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/rest"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/services/orders"
)

// discard is a ResponseWriter reused across iterations.
type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.n += len(p)
	return len(p), nil
}
func (d *discard) WriteHeader(code int) { d.code = code }
func (d *discard) Flush()               {}

// replay serves the same request again and again, rewinding its body.
type replay struct {
	req  *http.Request
	body []byte
	r    bytes.Reader
}

func newReplay(method, target string, header http.Header, body []byte) *replay {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	p := &replay{body: body}
	p.req = &http.Request{Method: method, URL: u, Header: header, Proto: "HTTP/2.0", ProtoMajor: 2, Host: "gateway", RequestURI: u.RequestURI(), ContentLength: int64(len(body))}
	return p
}

func (p *replay) serve(b *testing.B, h http.Handler, w *discard) {
	p.r.Reset(p.body)
	req := *p.req // vanguard rewrites the request it is given
	req.Header = p.req.Header.Clone()
	req.URL = new(url.URL)
	*req.URL = *p.req.URL
	req.Body = io.NopCloser(&p.r)
	clear(w.header)
	w.code, w.n = 0, 0
	h.ServeHTTP(w, &req)
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
}

type layers struct {
	handler, rest, corsRest, vanguard http.Handler
}

func newLayers(b *testing.B, opts ...rest.Option) layers {
	b.Helper()
	_, h := orders.New().Handler()
	r, err := rest.New(exampleServices[1:], h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	c, err := cors.New(cors.Policy{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"}, MaxAge: 600e9}, nil,
		cors.WithRouteResolver(r.ServicePath))
	if err != nil {
		b.Fatal(err)
	}
	v, err := vanguard.NewTranscoder([]*vanguard.Service{vanguard.NewService("/example.orders.v1.OrdersService/", h)})
	if err != nil {
		b.Fatal(err)
	}
	return layers{handler: h, rest: r, corsRest: c.Wrap(r), vanguard: v}
}

// rpcPath is the path of the RPC the benchmarks call.
const rpcPath = "http://gateway/example.orders.v1.OrdersService/GetOrder"

// rpcCall returns the body of a Connect unary call (binary) to GetOrder,
// and its headers as a server and as a browser sends them.
func rpcCall() (body []byte, header, browser http.Header) {
	body, _ = proto.Marshal(&ordersv1.GetOrderRequest{Id: "ord-0001"})
	header = http.Header{"Content-Type": {"application/proto"}, "Connect-Protocol-Version": {"1"}}
	browser = header.Clone()
	browser.Set("Origin", "https://app.example.com")
	return body, header, browser
}

// BenchmarkRPC: a Connect unary call (binary) served by the orders
// handler alone, through the REST layer, through CORS and the REST layer
// (with and without an Origin), and, for comparison, through a plain
// vanguard transcoder passing it on.
func BenchmarkRPC(b *testing.B) {
	l := newLayers(b)
	body, header, browser := rpcCall()
	for _, bc := range []struct {
		name   string
		h      http.Handler
		header http.Header
	}{
		{"handler", l.handler, header},
		{"rest", l.rest, header},
		{"cors+rest", l.corsRest, header},
		{"cors+rest,origin", l.corsRest, browser},
		{"vanguard", l.vanguard, header},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := newReplay("POST", rpcPath, bc.header, body)
			w := &discard{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				p.serve(b, bc.h, w)
			}
		})
	}
}

// BenchmarkREST: GET /v1/orders/ord-0001 through CORS and the REST layer
// (target codec proto, the default, and json), against the same call as
// Connect JSON to the handler alone.
func BenchmarkREST(b *testing.B) {
	proto := newLayers(b)
	json := newLayers(b, rest.WithTargetCodec("json"))
	origin := http.Header{"Origin": {"https://app.example.com"}}
	connectJSON := http.Header{"Content-Type": {"application/json"}, "Connect-Protocol-Version": {"1"}, "Origin": {"https://app.example.com"}}
	for _, bc := range []struct {
		name, method, target string
		h                    http.Handler
		header               http.Header
		body                 []byte
	}{
		{"connect-json,handler", "POST", "http://gateway/example.orders.v1.OrdersService/GetOrder", proto.handler, connectJSON, []byte(`{"id":"ord-0001"}`)},
		{"rest,proto-target", "GET", "http://gateway/v1/orders/ord-0001", proto.corsRest, origin, nil},
		{"rest,json-target", "GET", "http://gateway/v1/orders/ord-0001", json.corsRest, origin, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := newReplay(bc.method, bc.target, bc.header, bc.body)
			w := &discard{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				p.serve(b, bc.h, w)
			}
		})
	}
}

// variant is one way of serving a call, for interleave.
type variant struct {
	name string
	h    http.Handler
	p    *replay
}

// interleave serves each variant's call in turn, a round of calls at a
// time, until b.N calls ran on each, and reports the time and CPU time per
// call of each and their ratios to the first: the cost of the same call in
// the same run, whatever else the machine is doing.
func interleave(b *testing.B, variants []variant) {
	const round = 200
	walls := make([]time.Duration, len(variants))
	cpus := make([]time.Duration, len(variants))
	w := &discard{header: http.Header{}}
	ops := 0
	for ops < b.N {
		for i, v := range variants {
			start, startCPU := time.Now(), cpuTime()
			for range round {
				v.p.serve(b, v.h, w)
			}
			walls[i] += time.Since(start)
			cpus[i] += cpuTime() - startCPU
		}
		ops += round
	}
	for i, v := range variants {
		b.ReportMetric(float64(walls[i].Nanoseconds())/float64(ops), v.name+"-ns/op")
		if cpus[0] > 0 {
			b.ReportMetric(float64(cpus[i].Nanoseconds())/float64(ops), v.name+"-cpu-ns/op")
		}
		if i > 0 {
			b.ReportMetric(float64(walls[i])/float64(walls[0]), v.name+"/"+variants[0].name)
			if cpus[0] > 0 {
				b.ReportMetric(float64(cpus[i])/float64(cpus[0]), v.name+"/"+variants[0].name+"-cpu")
			}
		}
	}
	b.ReportMetric(0, "ns/op") // the metrics above say it per variant
}

// BenchmarkRPCOverhead: a Connect unary call (binary) served by the
// handler alone, through the REST layer, and through CORS and the REST
// layer without an Origin (a server's call) and with one (a browser's),
// interleaved.
func BenchmarkRPCOverhead(b *testing.B) {
	l := newLayers(b)
	body, header, browser := rpcCall()
	interleave(b, []variant{
		{"handler", l.handler, newReplay("POST", rpcPath, browser, body)},
		{"rest", l.rest, newReplay("POST", rpcPath, browser, body)},
		{"corsrest", l.corsRest, newReplay("POST", rpcPath, header, body)},
		{"corsrestorigin", l.corsRest, newReplay("POST", rpcPath, browser, body)},
	})
}

// BenchmarkRESTOverhead: GET /v1/orders/ord-0001 through CORS and the REST
// layer, against the same call as Connect JSON to the handler alone,
// interleaved.
func BenchmarkRESTOverhead(b *testing.B) {
	l := newLayers(b)
	j := newLayers(b, rest.WithTargetCodec("json"))
	origin := http.Header{"Origin": {"https://app.example.com"}}
	connectJSON := http.Header{"Content-Type": {"application/json"}, "Connect-Protocol-Version": {"1"}, "Origin": {"https://app.example.com"}}
	interleave(b, []variant{
		{"connectjson", l.handler, newReplay("POST", "http://gateway/example.orders.v1.OrdersService/GetOrder", connectJSON, []byte(`{"id":"ord-0001"}`))},
		{"rest", l.corsRest, newReplay("GET", "http://gateway/v1/orders/ord-0001", origin, nil)},
		{"restjson", j.corsRest, newReplay("GET", "http://gateway/v1/orders/ord-0001", origin, nil)},
	})
}

// BenchmarkPassThrough: what the REST layer costs a request it passes on
// (an RPC, an unknown path) and what resolving a route for CORS costs.
func BenchmarkPassThrough(b *testing.B) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	h, err := rest.New(exampleServices, next)
	if err != nil {
		b.Fatal(err)
	}
	w := &discard{header: http.Header{}}
	for _, bc := range []struct{ name, method, path string }{
		{"rpc", "POST", "/example.orders.v1.OrdersService/GetOrder"},
		{"unknown path", "GET", "/grpc.health.v1.Health/Check"},
		{"not a REST path", "GET", "/v1/orders/ord-0001/items"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &http.Request{Method: bc.method, URL: &url.URL{Path: bc.path}, Header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
	b.Run("ServicePath of a REST path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := h.ServicePath("GET", "/v1/jurisdictions/US-CA/requirements"); !ok {
				b.Fatal("no route")
			}
		}
	})
}
