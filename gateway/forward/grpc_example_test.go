package forward_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/services/orders"
)

func ExampleService_ServeGRPC() {
	// The backend: the example orders service over cleartext HTTP/2.
	backendMux := http.NewServeMux()
	backendMux.Handle(orders.New().Handler())
	backendServer := httptest.NewUnstartedServer(backendMux)
	backendServer.Config.Protocols = new(http.Protocols)
	backendServer.Config.Protocols.SetUnencryptedHTTP2(true)
	backendServer.Start()
	defer backendServer.Close()

	backend, err := forward.NewBackend(backendServer.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	svc := ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService")
	_, service, err := forward.NewHandler(svc, backend,
		forward.WithRequestHeaders(func(_ context.Context, h http.Header) {
			h.Set("Portcullis-Client-Id", "example-client")
		}),
	)
	if err != nil {
		log.Fatal(err)
	}

	// grpc-go's server takes the gRPC callers; the service forwards them.
	server := grpc.NewServer(append(forward.GRPCServerOptions(0),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			procedure, _ := grpc.MethodFromServerStream(ss)
			if forward.ServiceOf(procedure) != string(svc.FullName()) {
				return status.Error(codes.Unimplemented, "unknown service") // or forward.ServeGRPCOverHTTP
			}
			return service.ServeGRPC(ss, nil)
		}))...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = server.Serve(ln) }()
	defer server.Stop()

	// A grpc-go client calls it.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	var res ordersv1.PlaceOrderResponse
	err = conn.Invoke(context.Background(), "/example.orders.v1.OrdersService/PlaceOrder", &ordersv1.PlaceOrderRequest{
		Order: &ordersv1.Order{CustomerId: "cust-lin", Skus: []string{"sku-kettle"}, TotalCents: 3900},
	}, &res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetOrder().GetId(), res.GetOrder().GetPlacedBy())
	// Output:
	// ord-0003 example-client
}
