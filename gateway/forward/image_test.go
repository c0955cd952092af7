package forward_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/bufbuild/protocompile"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/forward"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const inventoryService = "example.inventory.v1.InventoryService"

// TestImageForwarding loads a descriptor set of a service that is not
// compiled into this binary, as the gateway loads a buf image, and forwards
// to a backend that serves it with dynamic messages. A request gate reads
// the method's declared permissions from the same image.
func TestImageForwarding(t *testing.T) {
	t.Parallel()
	if _, err := protoregistry.GlobalFiles.FindDescriptorByName(inventoryService); err == nil {
		t.Fatal("the inventory service is compiled in; the test would prove nothing")
	}
	files, err := catalog.LoadImage(writeImage(t, "example/inventory/v1/inventory.proto"))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := files.FindDescriptorByName(inventoryService)
	if err != nil {
		t.Fatal(err)
	}
	svc, ok := desc.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("%s is a %T", inventoryService, desc)
	}
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}

	backendURL := h2ctest.Serve(t, inventoryBackend(t, svc))
	be, err := forward.NewBackend(backendURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	path, h, err := forward.NewHandler(svc, be, forward.WithLogger(nil),
		forward.WithHandlerOptions(connect.WithRequestGate(grantGate(cat))))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	gw := h2ctest.Serve(t, mux)

	getStock := svc.Methods().ByName("GetStock")
	listStock := svc.Methods().ByName("ListStock")
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			get := dynamicClient(gw, getStock, p)
			req := connect.NewRequest(newDynamic(getStock.Input(), map[string]any{"sku": "sku-cup"}))
			req.Header().Set("X-Grant", "INV.READ")
			res, err := get.CallUnary(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := fieldOf(res.Msg, "quantity").Int(); got != 12 {
				t.Errorf("quantity = %d, want 12", got)
			}

			req = connect.NewRequest(newDynamic(getStock.Input(), map[string]any{"sku": "sku-none"}))
			req.Header().Set("X-Grant", "INV.READ")
			_, err = get.CallUnary(t.Context(), req)
			wantError(t, err, connect.CodeNotFound, `no stock of "sku-none"`)

			req = connect.NewRequest(newDynamic(getStock.Input(), map[string]any{"sku": "sku-cup"}))
			_, err = get.CallUnary(t.Context(), req)
			wantError(t, err, connect.CodePermissionDenied, "missing INV.READ")

			list := dynamicClient(gw, listStock, p)
			lreq := connect.NewRequest(newDynamic(listStock.Input(), map[string]any{"skus": []string{"sku-cup", "sku-mug"}}))
			lreq.Header().Set("X-Grant", "INV.READ")
			stream, err := list.CallServerStream(t.Context(), lreq)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for stream.Receive() {
				got = append(got, fmt.Sprintf("%s=%d", fieldOf(stream.Msg(), "sku").String(), fieldOf(stream.Msg(), "quantity").Int()))
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != "sku-cup=12,sku-mug=3" {
				t.Errorf("stream = %v", got)
			}
			// The backend ended the stream: its trailer arrives.
			if v := stream.ResponseTrailer().Get("Inventory-Trailer"); v != "2 items" {
				t.Errorf("trailer = %q", v)
			}
			_ = stream.Close()
		})
	}

	t.Run("curl", func(t *testing.T) {
		t.Parallel()
		u := gw + path + "GetStock?encoding=json&message=" + url.QueryEscape(`{"sku":"sku-mug"}`)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Grant", "INV.READ")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"quantity":"3"`) {
			t.Errorf("GET: %d %s", res.StatusCode, body)
		}
	})
}

// writeImage compiles a .proto file of testdata, with its imports, into a
// descriptor set as `buf build -o image.binpb` writes it, and returns the
// file's path.
func writeImage(t *testing.T, file string) string {
	t.Helper()
	compiler := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{"testdata", filepath.Join("..", "..", "proto")},
		}),
	}
	compiled, err := compiler.Compile(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := make(map[string]bool)
	var add func(protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) { // dependencies first
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, fd := range compiled {
		add(fd)
	}
	data, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.binpb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// grantGate refuses calls whose X-Grant header lacks a permission that the
// catalog says the method requires: a stand-in for the gateway's
// authorization, reading the same declarations.
func grantGate(cat *catalog.Catalog) connect.RequestGateFunc {
	return func(ctx context.Context, spec connect.Spec, _ connect.Peer, header http.Header) (context.Context, error) {
		m, ok := cat.Method(spec.Procedure)
		if !ok || spec.Schema != m.Descriptor {
			return nil, connect.NewError(connect.CodeInternal, errors.New("method not in the catalog"))
		}
		granted, err := cat.Masks(header.Values("X-Grant"))
		if err != nil {
			return nil, connect.NewError(connect.CodePermissionDenied, err)
		}
		if missing := m.Missing(granted); len(missing) > 0 {
			return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("missing %s", missing[0]))
		}
		return ctx, nil
	}
}

// inventoryBackend serves the inventory service with dynamic messages.
func inventoryBackend(t *testing.T, svc protoreflect.ServiceDescriptor) http.Handler {
	t.Helper()
	stock := map[string]int64{"sku-cup": 12, "sku-mug": 3}
	initialize := func(spec connect.Spec, msg any) error {
		md, ok := spec.Schema.(protoreflect.MethodDescriptor)
		dyn, isDyn := msg.(*dynamicpb.Message)
		if !ok || !isDyn {
			return errors.New("not a dynamic message")
		}
		*dyn = *dynamicpb.NewMessage(md.Input())
		return nil
	}
	answer := func(md protoreflect.MethodDescriptor, sku string) (*dynamicpb.Message, error) {
		n, ok := stock[sku]
		if !ok {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no stock of %q", sku))
		}
		return newDynamic(md.Output(), map[string]any{"sku": sku, "quantity": n}), nil
	}
	get := svc.Methods().ByName("GetStock")
	list := svc.Methods().ByName("ListStock")
	mux := http.NewServeMux()
	mux.Handle("/"+inventoryService+"/GetStock", connect.NewUnaryHandler(
		"/"+inventoryService+"/GetStock",
		func(_ context.Context, req *connect.Request[dynamicpb.Message]) (*connect.Response[dynamicpb.Message], error) {
			res, err := answer(get, fieldOf(req.Msg, "sku").String())
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(res), nil
		},
		connect.WithSchema(get), connect.WithRequestInitializer(initialize), connect.WithIdempotency(connect.IdempotencyNoSideEffects),
	))
	mux.Handle("/"+inventoryService+"/ListStock", connect.NewServerStreamHandler(
		"/"+inventoryService+"/ListStock",
		func(_ context.Context, req *connect.Request[dynamicpb.Message], stream *connect.ServerStream[dynamicpb.Message]) error {
			skus := fieldOf(req.Msg, "skus").List()
			for i := range skus.Len() {
				res, err := answer(list, skus.Get(i).String())
				if err != nil {
					return err
				}
				if err := stream.Send(res); err != nil {
					return err
				}
			}
			stream.ResponseTrailer().Set("Inventory-Trailer", fmt.Sprintf("%d items", skus.Len()))
			return nil
		},
		connect.WithSchema(list), connect.WithRequestInitializer(initialize),
	))
	return mux
}

// dynamicClient calls one method of a service known only by its descriptor.
func dynamicClient(base string, md protoreflect.MethodDescriptor, p protocol) *connect.Client[dynamicpb.Message, dynamicpb.Message] {
	opts := append([]connect.ClientOption{
		connect.WithSchema(md),
		connect.WithResponseInitializer(func(_ connect.Spec, msg any) error {
			dyn, ok := msg.(*dynamicpb.Message)
			if !ok {
				return errors.New("not a dynamic message")
			}
			*dyn = *dynamicpb.NewMessage(md.Output())
			return nil
		}),
	}, p.opts...)
	procedure := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	return connect.NewClient[dynamicpb.Message, dynamicpb.Message](h2cClient(), base+procedure, opts...)
}

// newDynamic returns a message of type md with the given fields set.
func newDynamic(md protoreflect.MessageDescriptor, fields map[string]any) *dynamicpb.Message {
	msg := dynamicpb.NewMessage(md)
	for name, value := range fields {
		fd := md.Fields().ByName(protoreflect.Name(name))
		switch v := value.(type) {
		case string:
			msg.Set(fd, protoreflect.ValueOfString(v))
		case int64:
			msg.Set(fd, protoreflect.ValueOfInt64(v))
		case []string:
			list := msg.Mutable(fd).List()
			for _, s := range v {
				list.Append(protoreflect.ValueOfString(s))
			}
		}
	}
	return msg
}

func fieldOf(msg *dynamicpb.Message, name string) protoreflect.Value {
	return msg.Get(msg.Descriptor().Fields().ByName(protoreflect.Name(name)))
}
