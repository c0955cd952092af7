package config_test

import (
	"fmt"
	"os"

	"github.com/portcullis/portcullis/gateway/config"
)

func ExampleParse() {
	cfg, err := config.Parse("portcullis.yaml", []byte(`
issuers:
  - issuer: https://auth.example.com
    audiences: [portcullis]
    discovery: true
routes:
  - service: example.licensing.v1.LicensingService
    backend: http://licensing:8080
limits:
  max_timeout: 10s
`), os.LookupEnv)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Routes[0].Backend, cfg.Routes[0].Protocol)
	fmt.Println(cfg.Limits.MaxTimeout, cfg.Limits.ShutdownTimeout)
	fmt.Println(cfg.Issuers[0].RequiredType(), cfg.Tokens.MaxAgeLimit())
	// Output:
	// http://licensing:8080 grpc
	// 10s 15s
	// at+jwt 1h0m0s
}

func ExampleError() {
	_, err := config.Parse("portcullis.yaml", []byte(`
route:
  - service: example.licensing.v1.LicensingService
    backends: http://licensing:8080
limits:
  max_timeout: 30
rate_limit:
  default: {requests: 0, period: 1 minute}
`), os.LookupEnv)
	fmt.Println(err)
	// Output:
	// portcullis.yaml: 5 mistakes
	// portcullis.yaml:2:1: route: unknown key; did you mean "routes"?
	// portcullis.yaml:4:5: route[0].backends: unknown key; did you mean "backend"?
	// portcullis.yaml:6:16: limits.max_timeout: want a duration such as "30s", got the number 30: add a unit
	// portcullis.yaml:8:23: rate_limit.default.requests: must be at least 1
	// portcullis.yaml:8:34: rate_limit.default.period: want a duration such as "30s", got "1 minute"; did you mean "1m"?
}

func ExampleReload_WatchEvery() {
	for _, file := range []string{"", "reload: {watch_interval: 500ms}", "reload: {watch_interval: 0s}"} {
		cfg, err := config.Parse("portcullis.yaml", []byte(`
routes: [{service: example.licensing.v1.LicensingService, backend: "http://licensing:8080"}]
`+file), os.LookupEnv)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(cfg.Reload.WatchEvery())
	}
	// Output:
	// 2s
	// 500ms
	// 0s
}

func ExampleConfig_ReadFiles() {
	cfg := config.Config{
		Descriptors: config.Descriptors{Images: []string{"protos.binpb"}},
		Issuers:     []config.Issuer{{Issuer: "offline", JWKSFile: "keys/offline.jwks"}}, // followed by the verifier
		Routes: []config.Route{
			{Service: "example.orders.v1.OrdersService", Backend: "https://orders:8443", CAFile: "tls/internal-ca.pem"},
			{Service: "example.licensing.v1.LicensingService", Backend: "https://licensing:8443", CAFile: "tls/internal-ca.pem"},
		},
		RateLimit: config.RateLimit{Store: "redis", Redis: config.Redis{TLS: true, TLSCAFile: "tls/redis-ca.pem"}},
		TLS:       &config.TLS{CertFile: "tls/cert.pem", KeyFile: "tls/key.pem"}, // read again at handshakes
	}
	fmt.Println(cfg.ReadFiles())
	// Output: [protos.binpb tls/internal-ca.pem tls/redis-ca.pem]
}
