package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	"github.com/portcullis/portcullis/gateway/cors"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/webclient"
)

// devAddrs are the addresses of the parts of the development stack.
type devAddrs struct {
	gateway, admin, issuer, licensing, orders, web string
}

// runDev starts the whole stack in one process: the token issuer, both
// example backends (verifying the gateway's internal tokens) and the
// gateway; says as each part starts; prints how to use it; logs one line
// per call; and on interrupt drains and stops everything, returning nil.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dir := fs.String("dir", ".portcullis", "the state folder: signing keys, client registry and the demo clients' secrets, kept from one start to the next")
	var a devAddrs
	fs.StringVar(&a.gateway, "listen", "127.0.0.1:8080", "the gateway's address")
	fs.StringVar(&a.admin, "admin", "127.0.0.1:9090", "the gateway's admin address (/healthz, /readyz, /metrics)")
	fs.StringVar(&a.issuer, "issuer", "127.0.0.1:8081", "the token issuer's address")
	fs.StringVar(&a.licensing, "licensing", "127.0.0.1:8082", "the licensing backend's address")
	fs.StringVar(&a.orders, "orders", "127.0.0.1:8083", "the orders backend's address")
	fs.StringVar(&a.web, "web", "127.0.0.1:8084", "the web client's address: a page on its own origin, allowed by the gateway's and the issuer's CORS")
	logLevel := fs.String("log-level", "info", "debug, info (one line per call), warn or error")
	tools := fs.String("tools", "tools/go.mod", "the go.mod of the tour's tools, buf and grpcurl, as the tour's commands name it")
	buildTools := fs.Bool("build-tools", true, "build the tour's tools in the background, so that its commands start at once")
	if err := parse(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "portcullis dev: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return errUsage
	}
	out := &syncWriter{w: stdout}
	logger := newDevLogger(stderr, level)

	// Listen first, so that a port in use fails at once and the URLs we
	// print are the real ones.
	listeners := map[*string]net.Listener{}
	for _, addr := range []*string{&a.gateway, &a.admin, &a.issuer, &a.licensing, &a.orders, &a.web} {
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
	defer func() { // those not served yet, when starting fails
		for _, l := range listeners {
			l.Close()
		}
	}()

	cat, err := loadCatalog("")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	fmt.Fprintf(out, "state folder %s: signing keys, client registry, demo client secrets\n", *dir)
	fmt.Fprintf(out, "%-31s http://%s\n", "starting the token issuer", a.issuer)
	registry := filepath.Join(*dir, "clients.yaml")
	secretsFile := filepath.Join(*dir, demoSecretsName)
	issuerURL := "http://" + a.issuer
	// The page is served from its own origin, which is 127.0.0.1's, not
	// localhost's: browsers tell them apart.
	webOrigin := "http://" + a.web
	iss, err := issuer.New(issuer.Config{
		IssuerURL:    issuerURL,
		Audience:     "portcullis",
		KeyDir:       filepath.Join(*dir, "keys"),
		RegistryPath: registry,
	}, cat, issuer.WithLogger(logger), issuer.WithCORS(cors.Policy{AllowedOrigins: []string{webOrigin}}), issuer.WithAdmin())
	if err != nil {
		return err
	}
	defer iss.Close()
	context.AfterFunc(ctx, func() { iss.Close() }) // before the drain: the gateway's revocation follower waits on the feed
	secrets, changed, err := ensureDemoClients(registry, secretsFile, cat, tokenCheck(iss.Handler()))
	if err != nil {
		return err
	}
	if changed {
		if err := iss.Reload(); err != nil {
			return err
		}
	}

	// The backends trust only the gateway: its internal tokens, verified
	// with the key set its admin listener publishes.
	gatewayURL := "http://" + a.gateway
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
    identity: internal
  - service: example.orders.v1.OrdersService
    backend: "http://%s"
    identity: internal
internal_tokens:
  issuer: %q
  lifetime: 60s
  key_dir: %q
resource: {url: "http://%s", name: Portcullis examples}
cors:
  allowed_origins: [%q]
  max_age: 10m
rate_limit:
  tiers:
    pro: {multiplier: 10}
telemetry:
  log_level: %s
`, a.gateway, a.admin, issuerURL, a.licensing, a.orders, gatewayURL, filepath.Join(*dir, "gateway-keys"), a.gateway, webOrigin, *logLevel)), os.LookupEnv)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return named("issuer", serve(ctx, listeners[&a.issuer], logTokenRequests(logger, iss.Handler()), 5*time.Second))
	})
	var verifiers []*token.Verifier
	for _, b := range []struct {
		name    string
		addr    *string
		service string
	}{{"licensing", &a.licensing, "example.licensing.v1.LicensingService"}, {"orders", &a.orders, "example.orders.v1.OrdersService"}} {
		fmt.Fprintf(out, "%-31s http://%s (trusting the gateway's internal tokens)\n", "starting the "+b.name+" backend", *b.addr)
		trusted := token.Issuer{Issuer: gatewayURL, Audiences: []string{b.service}, JWKSURL: "http://" + a.admin + gateway.JWKSPath, Type: "at+jwt"}
		// The gateway's admin listener serves once the gateway is built, below.
		verify, verifier, err := backendAuth(ctx, trusted, token.WithRetryBackoff(20*time.Millisecond, 500*time.Millisecond))
		if err != nil {
			return err
		}
		defer verifier.Close()
		verifiers = append(verifiers, verifier)
		path, handler, err := exampleBackend(ctx, b.name, verify...)
		if err != nil {
			return err
		}
		mux := newMux(path, handler)
		g.Go(func() error { return named(b.name+" backend", serve(ctx, listeners[b.addr], mux, 10*time.Second)) })
	}
	fmt.Fprintf(out, "%-31s %s\n", "starting the web client", webOrigin)
	page := webclient.Handler(webclient.Config{GatewayURL: "http://" + a.gateway, IssuerURL: issuerURL})
	g.Go(func() error { return named("web client", serve(ctx, listeners[&a.web], page, 5*time.Second)) })
	fmt.Fprintf(out, "%-31s http://%s (admin http://%s)\n", "starting the gateway", a.gateway, a.admin)
	gw, err := gateway.New(ctx, cfg, gateway.WithLogger(logger), gateway.WithClients(issuer.GraphClients(registry)))
	if err != nil {
		return err
	}
	defer gw.Close()
	g.Go(func() error { return gw.Serve(ctx, listeners[&a.gateway], listeners[&a.admin]) })

	fmt.Fprintln(out, "waiting for the gateway and backends to fetch the issuer's keys")
	switch err := waitReady(ctx, gw, verifiers); {
	case ctx.Err() != nil:
	case err != nil:
		fmt.Fprintf(stderr, "portcullis dev: the gateway is not ready: %v\n", err)
	default:
		fmt.Fprint(out, renderTour(a, secrets, secretsFile, *tools))
		if *buildTools {
			g.Go(func() error {
				buildTourTools(ctx, *tools, out)
				return nil
			})
		}
	}
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping: draining calls in flight")
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	fmt.Fprintln(out, "stopped")
	return err
}

// waitReady waits up to 15 seconds for the gateway and the backends'
// verifiers to have the issuer's keys.
func waitReady(ctx context.Context, gw *gateway.Gateway, verifiers []*token.Verifier) error {
	ready, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := gw.Ready()
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
	return err
}

// syncWriter serializes writes to w, which several goroutines share.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tourStep is one command of the printed tour and what its output shows.
type tourStep struct {
	comment string
	command string
	expect  string // a substring of the output, checked by the tests
}

// tour returns the tour's steps; tools is the go.mod of buf and grpcurl.
func tour(a devAddrs, secrets map[string]string, tools string) []tourStep {
	gw := "http://" + a.gateway
	goTool := "go tool -modfile=" + tools
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
			fmt.Sprintf(`%s buf curl --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $READER" -d '{"id":"ord-0001"}' %s/%s/GetOrder`, goTool, gw, orders),
			`"customerId": "cust-ada"`},
		{"Denied, over gRPC with grpcurl: PlaceOrder requires ORD.WRITE and LIC.READ_REQUIREMENTS.",
			fmt.Sprintf(`%s grpcurl -plaintext -H "Authorization: Bearer $READER" -d '{"order":{"customer_id":"cust-ada","skus":["sku-1"]}}' %s %s/PlaceOrder`, goTool, a.gateway, orders),
			"Code: PermissionDenied"},
		{"Get a token for client \"operator\", which holds every permission:",
			tokenCmd("OPERATOR", "operator"), "eyJ"},
		{"Allowed, with grpcurl: the operator may place orders.",
			fmt.Sprintf(`%s grpcurl -plaintext -H "Authorization: Bearer $OPERATOR" -d '{"order":{"customer_id":"cust-ada","skus":["sku-1"]}}' %s %s/PlaceOrder`, goTool, a.gateway, orders),
			`"placedBy": "operator"`},
		{"REST (google.api.http): the same method, the same check, with a path variable and a query parameter.",
			fmt.Sprintf(`curl -s -H "Authorization: Bearer $READER" '%s/v1/jurisdictions/US-CA/requirements?business_kind=restaurant'`, gw),
			`"id":"us-ca-food-facility"`},
		{"REST, a POST whose body is the order: the operator places one; the answer is the order as placed.",
			fmt.Sprintf(`curl -s -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' -d '{"customerId":"cust-ada","skus":["sku-1"]}' %s/v1/orders`, gw),
			`"placedBy":"operator"`},
		{"REST, denied: 403 with JSON naming what the reader lacks.",
			fmt.Sprintf(`curl -s -i -H "Authorization: Bearer $READER" -H 'Content-Type: application/json' -d '{"requirementId":"us-ca-seller","businessId":"biz-acme"}' %s/v1/licence-orders | grep -e '^HTTP' -e missing`, gw),
			"missing LIC.READ_ORDERS, LIC.WRITE_ORDERS"},
		{"Each backend gets, in place of the caller's token, a 60-second token the gateway signs for it; the gateway publishes its key set on the admin listener.",
			fmt.Sprintf(`curl -s http://%s%s`, a.admin, gateway.JWKSPath),
			`"alg":"ES256"`},
		{"Called directly, a backend refuses the caller's own token: it trusts only the gateway's.",
			fmt.Sprintf(`curl -s -H "Authorization: Bearer $READER" -H 'Content-Type: application/json' -d '{"jurisdiction":"US-CA","businessKind":"restaurant"}' http://%s/%s/ListRequirements`, a.licensing, licensing),
			`"code":"unauthenticated"`},
		{"No token: refused with 401 and a WWW-Authenticate challenge naming the gateway's metadata (RFC 9728).",
			fmt.Sprintf(`curl -s -i -H 'Content-Type: application/json' -d '{}' %s/%s/GetOrder | grep -i -e '^HTTP' -e '^www-authenticate'`, gw, orders),
			"401"},
		{"Revoke, and the token stops working: the reader revokes its own token (RFC 7009).",
			fmt.Sprintf(`curl -s -o /dev/null -w '%%{http_code}\n' -u reader:%s -d "token=$READER" http://%s/oauth2/revoke`, secrets["reader"], a.issuer),
			"200"},
		{"The call that worked before is refused now, though its verification was cached (every replica learns within a second).",
			fmt.Sprintf(`sleep 1; curl -s -H "Authorization: Bearer $READER" -H 'Content-Type: application/json' -d '{"jurisdiction":"US-CA","businessKind":"restaurant"}' %s/%s/ListRequirements`, gw, licensing),
			`"message":"token revoked"`},
	}
}

// renderTour renders what runDev prints once the stack is ready.
func renderTour(a devAddrs, secrets map[string]string, secretsFile, tools string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nPortcullis is running:\n  gateway    http://%s   (admin: http://%s/readyz, /metrics)\n  issuer     http://%s   (/.well-known/oauth-authorization-server)\n  licensing  http://%s   orders http://%s   (verifying the gateway's internal tokens)\n  web client http://%s   (open it in a browser: connect-web calls from its own origin)\n  clients    http://%s/admin.html   (provisioning: sign in as admin)   permission graph http://%s/graph\n\n",
		a.gateway, a.admin, a.issuer, a.licensing, a.orders, a.web, a.web, a.admin)
	fmt.Fprintf(&b, "Demo clients (secrets kept in %s, the same at every start; delete it for new ones):\n", secretsFile)
	for _, c := range demoClients {
		fmt.Fprintf(&b, "  %-9s secret %s  tier %-4s grants %s\n", c.id, secrets[c.id], c.tier, strings.Join(c.grants, " "))
	}
	b.WriteString("\nTry it (paste into a shell at the repository's root). Each call through the gateway logs a line here.\n\n")
	for _, s := range tour(a, secrets, tools) {
		fmt.Fprintf(&b, "# %s\n%s\n\n", s.comment, s.command)
	}
	b.WriteString("Press Ctrl-C to stop.\n")
	return b.String()
}
