package forward_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/orders"
)

func Example() {
	// The backend: the example orders service over cleartext HTTP/2.
	backendMux := http.NewServeMux()
	backendMux.Handle(orders.New().Handler())
	backendServer := httptest.NewUnstartedServer(backendMux)
	backendServer.Config.Protocols = new(http.Protocols)
	backendServer.Config.Protocols.SetUnencryptedHTTP2(true)
	backendServer.Start()
	defer backendServer.Close()

	// The gateway forwards OrdersService to it, naming the caller.
	backend, err := forward.NewBackend(backendServer.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	svc := ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService")
	path, handler, err := forward.NewHandler(svc, backend,
		forward.WithRequestHeaders(func(_ context.Context, h http.Header) {
			h.Set("Portcullis-Client-Id", "example-client")
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	gatewayMux := http.NewServeMux()
	gatewayMux.Handle(path, handler)
	gateway := httptest.NewServer(gatewayMux)
	defer gateway.Close()

	// A client calls the gateway with Connect and JSON over HTTP/1.1.
	client := ordersv1connect.NewOrdersServiceClient(http.DefaultClient, gateway.URL, connect.WithProtoJSON())
	res, err := client.PlaceOrder(context.Background(), connect.NewRequest(&ordersv1.PlaceOrderRequest{
		Order: &ordersv1.Order{CustomerId: "cust-lin", Skus: []string{"sku-kettle"}, TotalCents: 3900},
	}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Msg.GetOrder().GetId(), res.Msg.GetOrder().GetPlacedBy())

	_, err = client.GetOrder(context.Background(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-9999"}))
	fmt.Println(connect.CodeOf(err), err)
	// Output:
	// ord-0003 example-client
	// not_found not_found: order "ord-9999" not found
}

func ExampleNewBackendEndpoints() {
	// Two replicas of the orders service over cleartext HTTP/2, and one
	// address where nothing listens.
	var urls []string
	for range 2 {
		mux := http.NewServeMux()
		mux.Handle(orders.New().Handler())
		replica := httptest.NewUnstartedServer(mux)
		replica.Config.Protocols = new(http.Protocols)
		replica.Config.Protocols.SetUnencryptedHTTP2(true)
		replica.Start()
		defer replica.Close()
		urls = append(urls, replica.URL)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	urls = append(urls, dead.URL)

	backend, err := forward.NewBackendEndpoints(urls, forward.WithBalancer(forward.RoundRobin), forward.WithBackendLogger(nil))
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	svc := ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService")
	path, handler, err := forward.NewHandler(svc, backend)
	if err != nil {
		log.Fatal(err)
	}
	gatewayMux := http.NewServeMux()
	gatewayMux.Handle(path, handler)
	gateway := httptest.NewServer(gatewayMux)
	defer gateway.Close()

	// GetOrder is declared NO_SIDE_EFFECTS: a call that finds the dead
	// address is sent again to a live replica.
	client := ordersv1connect.NewOrdersServiceClient(http.DefaultClient, gateway.URL)
	for range 3 {
		if _, err := client.GetOrder(context.Background(), connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("retries:", backend.Retries())
	for _, e := range backend.Endpoints() {
		fmt.Println(e.URL == dead.URL, e.State, e.Failures)
	}
	// Output:
	// retries: 1
	// false up 0
	// false up 0
	// true up 1
}
