package licensing_test

import (
	"context"
	"fmt"
	"log"

	"connectrpc.com/connect"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/services/licensing"
)

func Example() {
	svc := licensing.New()
	// The service's methods can be called directly, as its handler does.
	res, err := svc.ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{
		Jurisdiction: "US-CA",
		BusinessKind: "restaurant",
	}))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Msg.GetRequirements() {
		fmt.Printf("%s: %s (%d cents)\n", r.GetId(), r.GetName(), r.GetFeeCents())
	}
	order, err := svc.Advance("lo-0002")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(order.GetId(), order.GetStatus())
	// Output:
	// us-ca-food-facility: Food Facility Health Permit (45000 cents)
	// us-ca-abc-41: On-Sale Beer and Wine Licence (70000 cents)
	// us-ca-seller: Seller's Permit (0 cents)
	// lo-0002 LICENCE_ORDER_STATUS_GRANTED
}
