package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/graph"
)

// Who can call LicensingService, as a tool reads it from the page's JSON.
func ExampleHandler() {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	h := graph.Handler(cat, func(context.Context) ([]graph.Client, error) {
		return []graph.Client{
			{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}},
			{ID: "operator", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS"}},
		}, nil
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/graph?format=json&q=LicensingService", nil))
	var g struct {
		Methods []struct {
			Procedure string
			Public    bool
			Callers   []string
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &g); err != nil {
		panic(err)
	}
	for _, m := range g.Methods {
		switch {
		case m.Public:
			fmt.Println(m.Procedure, "anyone")
		default:
			fmt.Println(m.Procedure, m.Callers)
		}
	}
	// Output:
	// /example.licensing.v1.LicensingService/CreateLicenceOrder [operator]
	// /example.licensing.v1.LicensingService/GetLicenceOrder [operator]
	// /example.licensing.v1.LicensingService/ListJurisdictions anyone
	// /example.licensing.v1.LicensingService/ListRequirements [operator reader]
	// /example.licensing.v1.LicensingService/WatchLicenceOrders [operator]
}
