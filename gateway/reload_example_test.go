package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/services/licensing"
)

// Replacing a serving gateway's configuration: a good one becomes the next
// generation, a bad one is refused whole and the generation serving stays.
func ExampleGateway_Reload() {
	_, lic := licensing.New().Handler()
	backend := httptest.NewUnstartedServer(lic)
	backend.Config.Protocols = new(http.Protocols)
	backend.Config.Protocols.SetUnencryptedHTTP2(true)
	backend.Start()
	defer backend.Close()

	parse := func(limit string) *config.Config {
		cfg, err := config.Parse("portcullis.yaml", []byte(`
routes: [{service: example.licensing.v1.LicensingService, backend: `+backend.URL+`}]
reload: {watch_interval: 0s}
rate_limit: {default: `+limit+`}
`), func(string) (string, bool) { return "", false })
		if err != nil {
			panic(err)
		}
		return cfg
	}
	ctx := context.Background()
	gw, err := gateway.New(ctx, parse("{requests: 10, period: 1s}"), gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	fmt.Println("serving generation", gw.Generation())

	n, err := gw.Reload(ctx, parse("{requests: 20, period: 1s}"))
	fmt.Println("reloaded:", n, err)

	bad := parse("{requests: 20, period: 1s}")
	bad.Routes[0].Service = "example.licensing.v1.NoSuchService"
	n, err = gw.Reload(ctx, bad)
	fmt.Println("still serving", n)
	fmt.Println(err)
	// Output:
	// serving generation 1
	// reloaded: 2 <nil>
	// still serving 2
	// reload refused: routes[0].service: example.licensing.v1.NoSuchService is not in the descriptors
}
