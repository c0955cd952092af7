package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/internal/jwttest"
	"github.com/portcullis/portcullis/services/licensing"
)

// A gateway in front of the example licensing backend, trusting one issuer
// that shares an HMAC secret with it; calls made with plain HTTP/JSON.
func Example() {
	// The backend: any Connect or gRPC server reachable over h2c.
	_, lic := licensing.New().Handler()
	backend := httptest.NewUnstartedServer(lic)
	backend.Config.Protocols = new(http.Protocols)
	backend.Config.Protocols.SetUnencryptedHTTP2(true)
	backend.Start()
	defer backend.Close()

	secret := "an example secret of 32 bytes!!!"
	cfg, err := config.Parse("portcullis.yaml", []byte(`
issuers:
  - issuer: https://issuer.example
    audiences: [portcullis]
    hmac_secret_env: EXAMPLE_SECRET
    allow_missing_kid: true   # one shared secret, so tokens name no key
routes:
  - service: example.licensing.v1.LicensingService
    backend: `+backend.URL+`
`), func(name string) (string, bool) { return secret, name == "EXAMPLE_SECRET" })
	if err != nil {
		fmt.Println(err)
		return
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	front := httptest.NewServer(gw.Handler()) // or gw.ListenAndServe(ctx)
	defer front.Close()

	// A token granting LIC.READ_REQUIREMENTS (mask 1 of domain LIC).
	tok := jwttest.NewHMAC([]byte(secret)).Mint(map[string]any{"typ": "at+jwt"}, map[string]any{
		"iss": "https://issuer.example", "aud": "portcullis", "client_id": "billing",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "perms": map[string]uint64{"LIC": 1},
	})
	call := func(method, tok, body string) {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/example.licensing.v1.LicensingService/"+method, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		// Print the refusal's code and message, or the answer's first
		// item; protojson's spacing is not stable, so decode it.
		var answer map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		if code, ok := answer["code"]; ok {
			fmt.Println(method, resp.StatusCode, code, answer["message"])
			return
		}
		for _, list := range answer {
			items, _ := list.([]any)
			first, _ := items[0].(map[string]any)
			name := first["code"]
			if name == nil {
				name = first["id"]
			}
			fmt.Println(method, resp.StatusCode, len(items), "items, the first", name)
		}
	}
	call("ListJurisdictions", "", `{}`) // public: no token needed
	call("ListRequirements", "", `{"jurisdiction":"US-CA","businessKind":"restaurant"}`)
	call("ListRequirements", tok, `{"jurisdiction":"US-CA","businessKind":"restaurant"}`)
	call("GetLicenceOrder", tok, `{"id":"lo-0001"}`)
	// Output:
	// ListJurisdictions 200 4 items, the first DE-BE
	// ListRequirements 401 unauthenticated missing bearer token
	// ListRequirements 200 3 items, the first us-ca-food-facility
	// GetLicenceOrder 403 permission_denied missing LIC.READ_ORDERS
}
