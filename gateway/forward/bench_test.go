package forward_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/orders"
)

// target is a client of the orders service.
type target struct {
	name   string
	client ordersv1connect.OrdersServiceClient
}

// benchTargets returns gRPC clients of the orders service, one calling the
// backend directly and one through the gateway, in the same process: the
// client, the gateway and the backend share the machine's cores.
func benchTargets(b *testing.B, backendOpts ...forward.BackendOption) []target {
	b.Helper()
	mux := http.NewServeMux()
	mux.Handle(orders.New().Handler())
	backendURL := h2ctest.Serve(b, mux)
	gw := startGateway(b, backendURL, backendOpts)
	// Without compression on either path, so that both do the same work
	// apart from the gateway's hop.
	grpc := []connect.ClientOption{connect.WithGRPC(), connect.WithAcceptCompression("gzip", nil, nil)}
	return []target{
		{"direct", ordersv1connect.NewOrdersServiceClient(h2cClient(), backendURL, grpc...)},
		{"forwarded", ordersv1connect.NewOrdersServiceClient(h2cClient(), gw, grpc...)},
	}
}

// BenchmarkUnary calls GetOrder, one call at a time (latency) and from
// 4×GOMAXPROCS goroutines at once (throughput).
func BenchmarkUnary(b *testing.B) {
	for _, target := range benchTargets(b) {
		b.Run(target.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := target.client.GetOrder(b.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(target.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := target.client.GetOrder(b.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkBidi streams SyncOrders messages both ways on one stream: one
// op is one message sent and its answer received, pipelined.
func BenchmarkBidi(b *testing.B) {
	for _, target := range benchTargets(b) {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			stream := target.client.SyncOrders(b.Context())
			stream.RequestHeader().Set("Portcullis-Client-Id", "bench")
			msg := &ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "ord-0001", CustomerId: "cust-ada", Skus: []string{"sku-espresso-machine"}, TotalCents: 129900}}
			sent := make(chan error, 1)
			b.ResetTimer()
			go func() {
				for range b.N {
					if err := stream.Send(msg); err != nil {
						sent <- err
						return
					}
				}
				sent <- stream.CloseRequest()
			}()
			for range b.N {
				if _, err := stream.Receive(); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
			_ = stream.CloseResponse()
		})
	}
}

// BenchmarkUnaryInterleaved measures the throughput of forwarded unary
// calls against direct ones robustly on a shared machine: the two
// alternate in short phases of 100 calls from 4 goroutines, so that load
// from elsewhere hits both alike, and the process's CPU time is measured
// besides wall time. One op is one direct and one forwarded call.
// Sub-benchmarks vary the protocol the gateway speaks to the backend and
// its number of connections to it.
func BenchmarkUnaryInterleaved(b *testing.B) {
	for _, protocol := range []forward.Protocol{forward.ProtocolGRPC, forward.ProtocolConnect} {
		for _, conns := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("backend=%s/conns=%d", protocol, conns), func(b *testing.B) {
				interleave(b, benchTargets(b, forward.WithProtocol(protocol), forward.WithConnections(conns)), unaryPhase)
			})
		}
	}
	// What connect's client defaults would cost on the gateway's hop: the
	// backend compresses every response, the gateway decompresses it.
	b.Run("backend=grpc/gzip", func(b *testing.B) {
		gzipped := connect.WithAcceptCompression("gzip",
			func() connect.Decompressor { return new(gzip.Reader) },
			func() connect.Compressor { return gzip.NewWriter(io.Discard) })
		interleave(b, benchTargets(b, forward.WithClientOptions(gzipped)), unaryPhase)
	})
}

// BenchmarkBidiInterleaved is BenchmarkBidi in interleaved phases: each
// phase sends and receives 100 messages on a new stream. One op is one
// message each way, directly and through the gateway.
func BenchmarkBidiInterleaved(b *testing.B) {
	for _, protocol := range []forward.Protocol{forward.ProtocolGRPC, forward.ProtocolConnect} {
		b.Run(fmt.Sprintf("backend=%s", protocol), func(b *testing.B) {
			interleave(b, benchTargets(b, forward.WithProtocol(protocol)), bidiPhase)
		})
	}
}

const phaseOps = 100 // ops per phase

// unaryPhase makes phaseOps unary calls from 4 goroutines.
func unaryPhase(b *testing.B, client ordersv1connect.OrdersServiceClient) {
	const workers = 4
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range phaseOps / workers {
				if _, err := client.GetOrder(b.Context(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// bidiPhase sends phaseOps messages on one stream while receiving the
// answers.
func bidiPhase(b *testing.B, client ordersv1connect.OrdersServiceClient) {
	stream := client.SyncOrders(b.Context())
	stream.RequestHeader().Set("Portcullis-Client-Id", "bench")
	msg := &ordersv1.SyncOrdersRequest{Order: &ordersv1.Order{Id: "ord-0001", CustomerId: "cust-ada", Skus: []string{"sku-espresso-machine"}, TotalCents: 129900}}
	sent := make(chan error, 1)
	go func() {
		for range phaseOps {
			if err := stream.Send(msg); err != nil {
				sent <- err
				return
			}
		}
		sent <- stream.CloseRequest()
	}()
	for range phaseOps {
		if _, err := stream.Receive(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	_ = stream.CloseResponse()
}

// interleave runs phase against each target in turn until b.N ops ran on
// each, and reports time per op and the direct/forwarded ratios.
func interleave(b *testing.B, targets []target, phase func(*testing.B, ordersv1connect.OrdersServiceClient)) {
	var walls, cpus [2]time.Duration
	ops := 0
	b.ReportAllocs()
	for ops < b.N {
		for i, target := range targets {
			start, startCPU := time.Now(), cpuTime()
			phase(b, target.client)
			walls[i] += time.Since(start)
			cpus[i] += cpuTime() - startCPU
		}
		ops += phaseOps
	}
	b.ReportMetric(float64(walls[0].Nanoseconds())/float64(ops), "direct-ns/op")
	b.ReportMetric(float64(walls[1].Nanoseconds())/float64(ops), "forwarded-ns/op")
	b.ReportMetric(float64(walls[0])/float64(walls[1]), "throughput-ratio")
	if cpus[1] > 0 {
		// CPU per op, client and servers together: the throughput ratio
		// on an otherwise idle machine.
		b.ReportMetric(float64(cpus[0].Nanoseconds())/float64(ops), "direct-cpu-ns/op")
		b.ReportMetric(float64(cpus[1].Nanoseconds())/float64(ops), "forwarded-cpu-ns/op")
		b.ReportMetric(float64(cpus[0])/float64(cpus[1]), "cpu-ratio")
	}
}
