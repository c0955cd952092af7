package orders_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"connectrpc.com/connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/services/orders"
)

func Example() {
	svc := orders.New(orders.WithClock(func() time.Time {
		return time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	}))
	// The gateway names the caller in a header it alone may set.
	req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{
		CustomerId: "cust-lin",
		Skus:       []string{"sku-kettle"},
		TotalCents: 3900,
	}})
	req.Header().Set(orders.DefaultIdentityHeader, "shop-frontend")
	res, err := svc.PlaceOrder(context.Background(), req)
	if err != nil {
		log.Fatal(err)
	}
	o := res.Msg.GetOrder()
	fmt.Println(o.GetId(), o.GetPlacedBy(), o.GetCreateTime().AsTime().Format(time.RFC3339))
	// Output: ord-0003 shop-frontend 2026-03-01T12:00:00Z
}
