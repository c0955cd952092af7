package rest_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/portcullis/portcullis/gateway/rest"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/services/orders"
)

// The REST routes of the orders service in front of its Connect handler.
// In the gateway, the handler behind is the mux of the forwarding handlers.
func Example() {
	_, ordersHandler := orders.New().Handler()
	svc := ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService")
	h, err := rest.New([]protoreflect.ServiceDescriptor{svc}, ordersHandler)
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range h.Bindings() {
		fmt.Println(b.Method, b.Template, "→", b.Procedure)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, path := range []string{"/v1/orders/ord-0001", "/v1/orders/ord-9999"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		var body struct {
			Order   struct{ ID, CustomerID string }
			Code    int
			Message string
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, body.Order.ID, body.Order.CustomerID)
		} else {
			fmt.Println(resp.StatusCode, body.Code, body.Message)
		}
	}
	// Output:
	// GET /v1/orders/{id} → /example.orders.v1.OrdersService/GetOrder
	// POST /v1/orders → /example.orders.v1.OrdersService/PlaceOrder
	// 200 ord-0001 cust-ada
	// 404 5 order "ord-9999" not found
}
