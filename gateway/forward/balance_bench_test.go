package forward_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/orders"
)

// rawMsg is a payload carried as bytes by the grpc-go proxy of
// BenchmarkBalancing.
type rawMsg struct{ b []byte }

// rawCodec copies payloads, for connect ("proto") and grpc-go alike.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, errors.New("not a rawMsg")
	}
	return m.b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return errors.New("not a rawMsg")
	}
	m.b = append(m.b[:0], data...)
	return nil
}

// grpcProxy serves GetOrder by forwarding it, as bytes, through a grpc-go
// ClientConn that balances round-robin over addrs: the machinery of
// google.golang.org/grpc (resolver, balancer, subchannels) in place of
// forward.Backend. It carries no headers, so it does less work than the
// gateway's handlers: a lower bound of what grpc-go would cost.
func grpcProxy(b *testing.B, addrs []string) string {
	b.Helper()
	r := manual.NewBuilderWithScheme("bench")
	state := resolver.State{}
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	conn, err := grpc.NewClient(r.Scheme()+":///orders", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	const procedure = ordersv1connect.OrdersServiceGetOrderProcedure
	mux := http.NewServeMux()
	mux.Handle(procedure, connect.NewUnaryHandler(procedure,
		func(ctx context.Context, req *connect.Request[rawMsg]) (*connect.Response[rawMsg], error) {
			out := new(rawMsg)
			if err := conn.Invoke(ctx, procedure, req.Msg, out, grpc.ForceCodec(rawCodec{})); err != nil {
				return nil, connect.NewError(connect.CodeUnavailable, err)
			}
			return connect.NewResponse(out), nil
		}, connect.WithCodec(rawCodec{})))
	return h2ctest.Serve(b, mux)
}

// BenchmarkBalancing compares the CPU per forwarded unary call of the
// gateway's path to one endpoint (as before endpoints were balanced) with
// its path balanced over three, with either balancer, and with a grpc-go
// ClientConn balancing over the same three. Each target runs phases of 100
// calls from 4 goroutines in turn, so load from elsewhere hits all alike;
// CPU time is the process's (client, gateway and backends together).
func BenchmarkBalancing(b *testing.B) {
	var urls, addrs []string
	for range 3 {
		mux := http.NewServeMux()
		mux.Handle(orders.New().Handler())
		u := h2ctest.Serve(b, mux)
		urls = append(urls, u)
		addrs = append(addrs, strings.TrimPrefix(u, "http://"))
	}
	gateway := func(targets []string, opts ...forward.BackendOption) string {
		be, err := forward.NewBackendEndpoints(targets, append(opts, forward.WithBackendLogger(nil))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = be.Close() })
		mux := http.NewServeMux()
		for _, svc := range gatewayServices {
			path, h, err := forward.NewHandler(svc, be, forward.WithLogger(nil))
			if err != nil {
				b.Fatal(err)
			}
			mux.Handle(path, h)
		}
		return h2ctest.Serve(b, mux)
	}
	grpcOpts := []connect.ClientOption{connect.WithGRPC(), connect.WithAcceptCompression("gzip", nil, nil)}
	client := func(url string) ordersv1connect.OrdersServiceClient {
		return ordersv1connect.NewOrdersServiceClient(h2cClient(), url, grpcOpts...)
	}
	targets := []target{
		{"single", client(gateway(urls[:1]))},
		{"round_robin", client(gateway(urls, forward.WithBalancer(forward.RoundRobin)))},
		{"least_request", client(gateway(urls, forward.WithBalancer(forward.LeastRequest)))},
		{"grpc-go", client(grpcProxy(b, addrs))},
	}
	for _, t := range targets { // warm up: connections open
		unaryPhase(b, t.client)
	}
	b.ResetTimer()
	walls := make([]time.Duration, len(targets))
	cpus := make([]time.Duration, len(targets))
	ops := 0
	b.ReportAllocs()
	for ops < b.N {
		for i, t := range targets {
			start, startCPU := time.Now(), cpuTime()
			unaryPhase(b, t.client)
			walls[i] += time.Since(start)
			cpus[i] += cpuTime() - startCPU
		}
		ops += phaseOps
	}
	for i, t := range targets {
		b.ReportMetric(float64(cpus[i].Nanoseconds())/float64(ops), t.name+"-cpu-ns/op")
		if i > 0 && cpus[i] > 0 {
			b.ReportMetric(float64(cpus[0])/float64(cpus[i]), fmt.Sprintf("single/%s-cpu-ratio", t.name))
			b.ReportMetric(float64(walls[0])/float64(walls[i]), fmt.Sprintf("single/%s-wall-ratio", t.name))
		}
	}
}
