package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	gatewayv1 "github.com/portcullis/portcullis/gen/gateway/v1"
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

func ExampleWithServices() {
	// Compile a file with source info, as buf build does, against the
	// compiled-in vocabulary. Of its services, Orders is routed; Legacy,
	// which is not, forgot to declare the access of Ping.
	compiler := protocompile.Compiler{
		SourceInfoMode: protocompile.SourceInfoStandard,
		Resolver: protocompile.WithStandardImports(protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
			switch path {
			case "shop.proto":
				return protocompile.SearchResult{Source: strings.NewReader(shop(orders + legacy))}, nil
			case "gateway/v1/options.proto":
				return protocompile.SearchResult{Desc: gatewayv1.File_gateway_v1_options_proto}, nil
			}
			return protocompile.SearchResult{}, fs.ErrNotExist
		})),
	}
	compiled, err := compiler.Compile(context.Background(), "shop.proto")
	if err != nil {
		log.Fatal(err)
	}
	files := new(protoregistry.Files)
	if err := files.RegisterFile(compiled[0]); err != nil {
		log.Fatal(err)
	}

	// For every service, the mistake in Legacy is an error.
	_, err = catalog.New(files)
	var invalid *catalog.ValidationError
	if errors.As(err, &invalid) {
		p := invalid.Problems[0]
		fmt.Println(p.Severity, p.Position(), p.Element, p.Rule)
	}

	// For the routed services only, it is a warning, and Legacy is left out.
	cat, err := catalog.New(files, catalog.WithServices("shop.v1.Orders"))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range cat.Warnings() {
		fmt.Println(p.Severity, p.Position(), p.Element, p.Rule, p.Services)
	}
	for _, m := range cat.Methods() {
		fmt.Println("enforced:", m.Procedure)
	}
	// Output:
	// error shop.proto:15:3 shop.v1.Legacy.Ping no-access
	// warning shop.proto:15:3 shop.v1.Legacy.Ping no-access [shop.v1.Legacy]
	// enforced: /shop.v1.Orders/Get
}
