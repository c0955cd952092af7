package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/internal/prototest"
)

// reflProto is the reflected backend's service; %s holds more RPCs, %s
// more imports.
const reflProto = `syntax = "proto3";
package test.refl.v1;
import "gateway/v1/options.proto";
%s
enum ReflPermission {
  option (gateway.v1.domain) = {name: "REF", description: "The reflected service"};
  REFL_PERMISSION_UNSPECIFIED = 0;
  REFL_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1, description: "Read"}];
  REFL_PERMISSION_WRITE = 2 [(gateway.v1.permission) = {mask: 2, description: "Write"}];
}
service ReflService {
  rpc Hello(Empty) returns (Empty) { option (gateway.v1.access) = {requires: ["REF.READ"]}; }
%s}
message Empty {}
`

const (
	writeDeclared = `  rpc Write(Empty) returns (Empty) { option (gateway.v1.access) = {requires: ["REF.WRITE"]}; }
`
	writePublic = `  rpc Write(Empty) returns (Empty) { option (gateway.v1.access) = {public: true}; }
`
	// evilOrders declares the orders service, another route's, as public.
	evilOrders = `syntax = "proto3";
package example.orders.v1;
import "gateway/v1/options.proto";
service OrdersService {
  rpc GetOrder(Nothing) returns (Nothing) { option (gateway.v1.access) = {public: true}; }
}
message Nothing {}
`
)

// swappable resolves descriptors from files the test replaces.
type swappable struct {
	files atomic.Pointer[protoregistry.Files]
}

func (s *swappable) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	return s.files.Load().FindFileByPath(path)
}

func (s *swappable) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	return s.files.Load().FindDescriptorByName(name)
}

func (s *swappable) set(t *testing.T, rpcs string, evil bool) {
	t.Helper()
	sources := map[string]string{}
	imports := ""
	if evil {
		sources["evil/orders.proto"] = evilOrders
		imports = `import "evil/orders.proto";`
	}
	sources["test/refl/v1/refl.proto"] = fmt.Sprintf(reflProto, imports, rpcs)
	s.files.Store(prototest.Files(t, sources))
}

// reflBackend serves test.refl.v1.ReflService's Hello and Write, answering
// an empty message, and gRPC reflection of the descriptors in res.
func reflBackend(t *testing.T, res *swappable) string {
	t.Helper()
	mux := http.NewServeMux()
	answer := func(context.Context, *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	mux.Handle("/test.refl.v1.ReflService/Hello", connect.NewUnaryHandler("/test.refl.v1.ReflService/Hello", answer))
	mux.Handle("/test.refl.v1.ReflService/Write", connect.NewUnaryHandler("/test.refl.v1.ReflService/Write", answer))
	reflector := grpcreflect.NewReflector(grpcreflect.NamerFunc(func() []string { return []string{"test.refl.v1.ReflService"} }),
		grpcreflect.WithDescriptorResolver(res))
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return h2ctest.Serve(t, mux)
}

// TestReflectionDescriptors routes a service whose descriptors come from
// its backend's gRPC reflection: the gateway enforces what they declare;
// when the backend adds an RPC with its declaration, the gateway enforces
// that too after its refresh, with no change of its own. Descriptors that
// make a method public, which the route's pin forbids, and descriptors
// that declare another route's service are refused: the descriptors from
// before stay in force.
func TestReflectionDescriptors(t *testing.T) {
	t.Parallel()
	res := &swappable{}
	res.set(t, "", false)
	backend := reflBackend(t, res)
	s := newReloadStack(t, fmt.Sprintf("  - {service: test.refl.v1.ReflService, backend: %q, descriptors: reflection, reflection_refresh: 100ms}\n", backend))
	mint := func(ref int) string {
		c := jwttest.ClaimsAt(s.idp.Issuer, "portcullis", time.Now())
		c["perms"] = map[string]any{"REF": ref}
		return s.signer.Mint(nil, c)
	}
	reader, writer := mint(1), mint(3)
	call := func(method, tok string) error {
		client := connect.NewClient[emptypb.Empty, emptypb.Empty](&http.Client{Transport: bearer{tok: tok, base: h2ctest.Transport()}},
			s.url+"/test.refl.v1.ReflService/"+method, connect.WithGRPC())
		_, err := client.CallUnary(context.Background(), connect.NewRequest(&emptypb.Empty{}))
		return err
	}
	want := func(what string, err error, code connect.Code) {
		t.Helper()
		if connect.CodeOf(err) != code && !(code == 0 && err == nil) {
			t.Errorf("%s: %v, want %v", what, err, code)
		}
	}
	const ok = connect.Code(0)
	want("Hello, reader", call("Hello", reader), ok)
	want("Hello, no permission", call("Hello", mint(0)), connect.CodePermissionDenied)
	want("Write, not described", call("Write", writer), connect.CodeUnimplemented)

	// The backend adds Write, declared.
	res.set(t, writeDeclared, false)
	waitUntil(t, "the refresh of the changed descriptors", func() bool { return s.gw.Generation() == 2 })
	want("Write, writer", call("Write", writer), ok)
	want("Write, reader", call("Write", reader), connect.CodePermissionDenied)
	want("Write, anonymous", call("Write", ""), connect.CodeUnauthenticated)

	// The backend makes Write public: refused, Write stays declared.
	res.set(t, writePublic, false)
	waitUntil(t, "the refusal of a public method", func() bool {
		return strings.Contains(fmt.Sprint(s.readyz()["last_reload_error"]), "/test.refl.v1.ReflService/Write public")
	})
	if n := s.gw.Generation(); n != 2 {
		t.Fatalf("generation %d after refused descriptors, want 2", n)
	}
	want("Write, anonymous, after the refused public", call("Write", ""), connect.CodeUnauthenticated)
	want("Write, writer, after the refused public", call("Write", writer), ok)

	// The backend's descriptors declare the orders service public: refused,
	// the orders route's rules stay the gateway's.
	res.set(t, writeDeclared, true)
	waitUntil(t, "the refusal of another route's service", func() bool {
		return strings.Contains(fmt.Sprint(s.readyz()["last_reload_error"]), "declares example.orders.v1.OrdersService, which routes[1] routes")
	})
	if n := s.gw.Generation(); n != 2 {
		t.Fatalf("generation %d after refused descriptors, want 2", n)
	}
	_, err := s.orders("").GetOrder(context.Background(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"}))
	want("orders GetOrder, anonymous", err, connect.CodeUnauthenticated)
	want("Hello, reader, at the end", call("Hello", reader), ok)
	if s.reloads("failed") < 2 {
		t.Errorf(`portcullis_reloads_total{result="failed"} = %d, want at least 2`, s.reloads("failed"))
	}
}

// waitUntil waits up to 10 seconds for cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReflectionRefusedAtStart: a gateway does not start on descriptors
// from reflection it cannot trust: a backend whose gateway/v1/options.proto
// numbers the access fields its own way, or a backend it cannot reach.
func TestReflectionRefusedAtStart(t *testing.T) {
	t.Parallel()
	options, err := os.ReadFile(filepath.Join(prototest.ProtoDir, "gateway", "v1", "options.proto"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(options), "bool public = 2;", "bool public = 1000;", 1)
	res := &swappable{}
	res.files.Store(prototest.Files(t, map[string]string{
		"gateway/v1/options.proto": tampered,
		"test/refl/v1/refl.proto":  fmt.Sprintf(reflProto, "", ""),
	}))
	closed := deadAddr
	for _, tc := range []struct{ name, backend, want string }{
		{"own options", reflBackend(t, res), "gateway/v1/options.proto differs from the gateway's: message Access: field public is not the gateway's"},
		{"unreachable", "http://" + closed, "routes[0]: the backend's reflection:"},
	} {
		cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
routes: [{service: test.refl.v1.ReflService, backend: %q, descriptors: reflection}]
reload: {watch_interval: 0s}
`, tc.backend)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
		if err == nil {
			gw.Close()
			t.Fatalf("%s: the gateway started", tc.name)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
