package ratelimit_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/token"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
	"github.com/portcullis/portcullis/internal/redistest"
)

// t0 is the start of every test's explicit time line.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock is a clock that only moves when told.
type testClock struct{ ns atomic.Int64 }

func newClock() *testClock {
	c := &testClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// compiledCatalog is the catalog of the compiled-in example services.
func compiledCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// testCatalog is the catalog of the example services, except that
// SyncOrders also declares a call rate of 2 a minute and a stream message
// rate of 10 a second, burst 3.
func testCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	orders, err := protoregistry.GlobalFiles.FindFileByPath("example/orders/v1/orders.proto")
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	licensing, err := protoregistry.GlobalFiles.FindFileByPath("example/licensing/v1/licensing.proto")
	if err != nil {
		t.Fatal(err)
	}
	add(licensing)
	add(orders)
	for _, file := range set.File {
		if file.GetName() != orders.Path() {
			continue
		}
		for _, method := range file.GetService()[0].GetMethod() {
			if method.GetName() != "SyncOrders" {
				continue
			}
			access := proto.Clone(proto.GetExtension(method.GetOptions(), gatewayv1.E_Access).(*gatewayv1.Access)).(*gatewayv1.Access)
			access.RateLimit = &gatewayv1.RateLimit{Requests: 2, Period: durationpb.New(time.Minute), Burst: 2}
			access.StreamMessageLimit = &gatewayv1.RateLimit{Requests: 10, Period: durationpb.New(time.Second), Burst: 3}
			proto.SetExtension(method.GetOptions(), gatewayv1.E_Access, access)
		}
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// principalFromHeader stands in for authentication: it puts a Principal
// with the client id and tier of the x-test-client and x-test-tier request
// headers into the context.
type principalFromHeader struct{}

func (principalFromHeader) principal(ctx context.Context, h http.Header) context.Context {
	if id := h.Get("X-Test-Client"); id != "" {
		return token.NewContext(ctx, &token.Principal{Subject: id, ClientID: id, Tier: h.Get("X-Test-Tier")})
	}
	return ctx
}

// Gate is the request gate that authenticates so.
func (p principalFromHeader) Gate(ctx context.Context, _ connect.Spec, _ connect.Peer, h http.Header) (context.Context, error) {
	return p.principal(ctx, h), nil
}

func (p principalFromHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(p.principal(ctx, req.Header()), req)
	}
}

func (principalFromHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (p principalFromHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(p.principal(ctx, conn.RequestHeader()), conn)
	}
}

// newMemory returns a Memory store, closed when the test ends.
func newMemory(t testing.TB, opts ...ratelimit.MemoryOption) *ratelimit.Memory {
	t.Helper()
	m, err := ratelimit.NewMemory(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// newRedisClient connects to addr, closing the client when the test ends.
func newRedisClient(t testing.TB, addr string, poolSize int) *redis.Client {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		PoolSize:              poolSize,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// sharedRedis returns a client of the shared Redis with a pool of
// poolSize connections, and a key prefix of the test's own.
func sharedRedis(t testing.TB, poolSize int) (*redis.Client, string) {
	t.Helper()
	client := newRedisClient(t, redistest.SharedAddr, poolSize)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	redistest.Need(t, client.Ping(ctx).Err())
	return client, redistest.Prefix(t, client)
}

// newRedisServer is a redis-server of the test's own, which DEBUG SLEEP
// may stall.
func newRedisServer(t testing.TB) *redistest.Server {
	t.Helper()
	return redistest.Start(t, "--enable-debug-command", "local")
}
