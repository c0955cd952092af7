package catalog_test

import (
	"fmt"
	"log"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
)

func ExampleCatalog_Method() {
	// The example services are compiled into this test binary.
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		log.Fatal(err)
	}
	m, _ := cat.Method("/example.orders.v1.OrdersService/PlaceOrder")
	fmt.Println("requires:", m.Requires)
	fmt.Println("need:", m.Need)

	token := map[string]uint64{"LIC": 1, "ORD": 1} // READ_REQUIREMENTS, READ
	fmt.Println("allowed:", m.Allows(token))
	fmt.Println("missing:", m.Missing(token))
	// Output:
	// requires: [LIC.READ_REQUIREMENTS ORD.WRITE]
	// need: [{LIC 1} {ORD 2}]
	// allowed: false
	// missing: [ORD.WRITE]
}

func ExampleCatalog_Masks() {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		log.Fatal(err)
	}
	masks, err := cat.Masks([]string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "ORD.READ"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(masks["LIC"], masks["ORD"])
	// Output: 3 1
}
