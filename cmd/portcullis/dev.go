package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/services/issuer"
)

// devAddrs are the addresses of the parts of the development stack.
type devAddrs struct {
	gateway, admin, issuer, licensing, orders string
}

// demoClient is a client the development stack registers with a fresh
// secret at every start.
type demoClient struct {
	id, tier string
	grants   []string
}

var demoClients = []demoClient{
	{id: "reader", tier: "free", grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}},
	{id: "operator", tier: "pro", grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}},
}

// runDev starts the whole stack in one process: the token issuer, both
// example backends (verifying tokens again) and the gateway; prints how to
// use it; and stops everything cleanly on interrupt.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dir := fs.String("dir", ".portcullis", "where the issuer keeps its keys and client registry")
	var a devAddrs
	fs.StringVar(&a.gateway, "listen", "127.0.0.1:8080", "the gateway's address")
	fs.StringVar(&a.admin, "admin", "127.0.0.1:9090", "the gateway's admin address (/healthz, /readyz, /metrics)")
	fs.StringVar(&a.issuer, "issuer", "127.0.0.1:8081", "the token issuer's address")
	fs.StringVar(&a.licensing, "licensing", "127.0.0.1:8082", "the licensing backend's address")
	fs.StringVar(&a.orders, "orders", "127.0.0.1:8083", "the orders backend's address")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	logger := newLogger(stderr, *logLevel)

	// Listen first, so that a port in use fails at once and the URLs we
	// print are the real ones.
	listeners := map[*string]net.Listener{}
	for _, addr := range []*string{&a.gateway, &a.admin, &a.issuer, &a.licensing, &a.orders} {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("%w (is another portcullis running?)", err)
		}
		listeners[addr] = ln
		*addr = ln.Addr().String()
	}

	cat, err := loadCatalog("")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	registry := filepath.Join(*dir, "clients.yaml")
	secrets := map[string]string{}
	for _, c := range demoClients {
		if err := issuer.RevokeClient(registry, c.id); err != nil && !errors.Is(err, issuer.ErrUnknownClient) {
			return err
		}
		secret, err := issuer.AddClient(registry, cat, issuer.Client{ID: c.id, Grants: c.grants, Tier: c.tier})
		if err != nil {
			return err
		}
		secrets[c.id] = secret
	}
	issuerURL := "http://" + a.issuer
	iss, err := issuer.New(issuer.Config{
		IssuerURL:    issuerURL,
		Audience:     "portcullis",
		KeyDir:       filepath.Join(*dir, "keys"),
		RegistryPath: registry,
	}, cat, issuer.WithLogger(logger))
	if err != nil {
		return err
	}
	defer iss.Close()

	cfg, err := config.Parse("portcullis dev", []byte(fmt.Sprintf(`
listen: %q
admin: %q
issuers:
  - issuer: %q
    audiences: [portcullis]
    discovery: true
    type: at+jwt
routes:
  - service: example.licensing.v1.LicensingService
    backend: "http://%s"
  - service: example.orders.v1.OrdersService
    backend: "http://%s"
rate_limit:
  tiers:
    pro: {multiplier: 10}
telemetry:
  log_level: %s
`, a.gateway, a.admin, issuerURL, a.licensing, a.orders, *logLevel)), os.LookupEnv)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(ctx, listeners[&a.issuer], iss.Handler(), 5*time.Second) })
	var verifiers []*token.Verifier
	for name, addr := range map[string]*string{"licensing": &a.licensing, "orders": &a.orders} {
		verify, verifier, err := backendAuth(ctx, issuerURL, "portcullis")
		if err != nil {
			return err
		}
		defer verifier.Close()
		verifiers = append(verifiers, verifier)
		path, handler, err := exampleBackend(ctx, name, verify...)
		if err != nil {
			return err
		}
		mux := newMux(path, handler)
		g.Go(func() error { return serve(ctx, listeners[addr], mux, 10*time.Second) })
	}
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(logger))
	if err != nil {
		return err
	}
	defer gw.Close()
	g.Go(func() error { return gw.Serve(ctx, listeners[&a.gateway], listeners[&a.admin]) })

	ready, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = gw.Ready()
	for err != nil && ready.Err() == nil {
		select {
		case <-ready.Done():
		case <-time.After(20 * time.Millisecond):
		}
		err = gw.Ready()
	}
	for _, v := range verifiers {
		if err == nil {
			err = v.WaitReady(ready)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis dev: the gateway is not ready: %v\n", err)
	} else {
		fmt.Fprint(stdout, renderTour(a, secrets))
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	fmt.Fprintln(stdout, "stopped")
	return err
}

// tourStep is one command of the printed tour and what its output shows.
type tourStep struct {
	comment string
	command string
	expect  string // a substring of the output, checked by the tests
}

func tour(a devAddrs, secrets map[string]string) []tourStep {
	gw := "http://" + a.gateway
	tokenCmd := func(v, id string) string {
		return fmt.Sprintf(`%s=$(curl -s -u %s:%s -d grant_type=client_credentials http://%s/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/'); echo "${%s:0:12}..."`,
			v, id, secrets[id], a.issuer, v)
	}
	const licensing, orders = "example.licensing.v1.LicensingService", "example.orders.v1.OrdersService"
	return []tourStep{
		{"Get a token for client \"reader\" (LIC.READ_REQUIREMENTS, ORD.READ), by OAuth 2.0 client credentials:",
			tokenCmd("READER", "reader"), "eyJ"},
		{"Allowed: ListRequirements requires LIC.READ_REQUIREMENTS (curl, Connect with JSON).",
			fmt.Sprintf(`curl -s -H "Authorization: Bearer $READER" -H 'Content-Type: application/json' -d '{"jurisdiction":"US-CA","businessKind":"restaurant"}' %s/%s/ListRequirements`, gw, licensing),
			`"id":"us-ca-food-facility"`},
		{"Denied: CreateLicenceOrder requires LIC.READ_ORDERS and LIC.WRITE_ORDERS.",
			fmt.Sprintf(`curl -s -H "Authorization: Bearer $READER" -H 'Content-Type: application/json' -d '{"requirementId":"us-ca-seller","businessId":"biz-acme"}' %s/%s/CreateLicenceOrder`, gw, licensing),
			`"code":"permission_denied","message":"missing LIC.READ_ORDERS, LIC.WRITE_ORDERS"`},
		{"Public, no token: ListJurisdictions as a Connect GET.",
			fmt.Sprintf(`curl -s '%s/%s/ListJurisdictions?connect=v1&encoding=json&message=%%7B%%7D'`, gw, licensing),
			`"code":"US-CA"`},
		{"Allowed, over gRPC with buf curl (the gateway serves gRPC reflection): GetOrder requires ORD.READ.",
			fmt.Sprintf(`go tool buf curl --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $READER" -d '{"id":"ord-0001"}' %s/%s/GetOrder`, gw, orders),
			`"customerId": "cust-ada"`},
		{"Denied, over gRPC with grpcurl: PlaceOrder requires ORD.WRITE and LIC.READ_REQUIREMENTS.",
			fmt.Sprintf(`go tool grpcurl -plaintext -H "Authorization: Bearer $READER" -d '{"order":{"customer_id":"cust-ada","skus":["sku-1"]}}' %s %s/PlaceOrder`, a.gateway, orders),
			"Code: PermissionDenied"},
		{"Get a token for client \"operator\", which holds every permission:",
			tokenCmd("OPERATOR", "operator"), "eyJ"},
		{"Allowed, with grpcurl: the operator may place orders.",
			fmt.Sprintf(`go tool grpcurl -plaintext -H "Authorization: Bearer $OPERATOR" -d '{"order":{"customer_id":"cust-ada","skus":["sku-1"]}}' %s %s/PlaceOrder`, a.gateway, orders),
			`"placedBy": "operator"`},
		{"No token: refused with 401 and a WWW-Authenticate challenge.",
			fmt.Sprintf(`curl -s -i -H 'Content-Type: application/json' -d '{}' %s/%s/GetOrder | grep -i -e '^HTTP' -e '^www-authenticate'`, gw, orders),
			"401"},
	}
}

func renderTour(a devAddrs, secrets map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPortcullis is running:\n  gateway    http://%s   (admin: http://%s/readyz, /metrics)\n  issuer     http://%s   (/.well-known/oauth-authorization-server)\n  licensing  http://%s   orders http://%s   (verifying tokens again)\n\n",
		a.gateway, a.admin, a.issuer, a.licensing, a.orders)
	b.WriteString("Demo clients (fresh secrets at every start):\n")
	for _, c := range demoClients {
		fmt.Fprintf(&b, "  %-9s secret %s  tier %-4s grants %s\n", c.id, secrets[c.id], c.tier, strings.Join(c.grants, " "))
	}
	b.WriteString("\nTry it (paste into a shell in this directory):\n\n")
	for _, s := range tour(a, secrets) {
		fmt.Fprintf(&b, "# %s\n%s\n\n", s.comment, s.command)
	}
	b.WriteString("Press Ctrl-C to stop.\n")
	return b.String()
}
