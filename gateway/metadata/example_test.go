package metadata_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/metadata"
)

func Example() {
	cat, err := catalog.New(protoregistry.GlobalFiles) // the example services
	if err != nil {
		panic(err)
	}
	md, err := metadata.New(cat, metadata.Resource{
		Identifier:           "https://api.example.com",
		AuthorizationServers: []string{"https://auth.example.com"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(md.URL()) // for authz.WithResourceMetadata

	mux := http.NewServeMux()
	mux.Handle(md.Pattern(), md)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	fmt.Println(rec.Code, rec.Header().Get("Cache-Control"))
	fmt.Print(rec.Body)
	// Output:
	// https://api.example.com/.well-known/oauth-protected-resource
	// 200 public, max-age=300
	// {
	//   "resource": "https://api.example.com",
	//   "authorization_servers": [
	//     "https://auth.example.com"
	//   ],
	//   "scopes_supported": [
	//     "LIC.READ_REQUIREMENTS",
	//     "LIC.READ_ORDERS",
	//     "LIC.WRITE_ORDERS",
	//     "ORD.READ",
	//     "ORD.WRITE"
	//   ],
	//   "bearer_methods_supported": [
	//     "header"
	//   ]
	// }
}
