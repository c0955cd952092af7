package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/token"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
)

// runBackend serves one example backend. With --issuer it verifies every
// call's token again, with the gateway's own interceptor.
func runBackend(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("backend", stderr)
	service := fs.String("service", "", "the example service: licensing or orders")
	listen := fs.String("listen", "127.0.0.1:8082", "the address to serve on (h2c)")
	issuer := fs.String("issuer", "", "verify tokens from this issuer (its metadata names its keys, unless --jwks-url)")
	audience := fs.String("audience", "portcullis", "the audience tokens must name, with --issuer")
	jwksURL := fs.String("jwks-url", "", "with --issuer, the issuer's key set, such as a gateway's internal tokens' at http://ADMIN/.well-known/jwks.json")
	if err := parse(fs, args); err != nil {
		return err
	}
	var opts []connect.HandlerOption
	if *issuer != "" {
		trusted := token.Issuer{Issuer: *issuer, Audiences: []string{*audience}, JWKSURL: *jwksURL, Discover: *jwksURL == "", Type: "at+jwt"}
		verify, verifier, err := backendAuth(ctx, trusted)
		if err != nil {
			return err
		}
		defer verifier.Close()
		opts = append(opts, verify...)
	}
	path, handler, err := exampleBackend(ctx, *service, opts...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	mux := http.NewServeMux()
	mux.Handle(path, handler)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, "info")
	logger.Info("backend serving", "service", *service, "listen", ln.Addr().String(), "verifies_tokens", *issuer != "")
	return serve(ctx, ln, mux, 10*time.Second)
}

// exampleBackend returns the handler of an example service by name. The
// licensing service's orders advance every 10 seconds until ctx is done, so
// that WatchLicenceOrders has news to stream.
func exampleBackend(ctx context.Context, name string, opts ...connect.HandlerOption) (string, http.Handler, error) {
	switch name {
	case "licensing":
		svc := licensing.New()
		ticker := time.NewTicker(10 * time.Second)
		go func() {
			defer ticker.Stop()
			_ = svc.Run(ctx, ticker.C)
		}()
		path, h := svc.Handler(opts...)
		return path, h, nil
	case "orders":
		path, h := orders.New().Handler(opts...)
		return path, h, nil
	default:
		return "", nil, fmt.Errorf("unknown service %q: want licensing or orders", name)
	}
}

// backendAuth returns handler options with which a backend verifies the
// tokens of trusted itself, with the same catalog and verifier as the
// gateway.
func backendAuth(ctx context.Context, trusted token.Issuer, opts ...token.Option) ([]connect.HandlerOption, *token.Verifier, error) {
	cat, err := loadCatalog("")
	if err != nil {
		return nil, nil, err
	}
	verifier, err := token.NewVerifier(ctx, []token.Issuer{trusted}, opts...)
	if err != nil {
		return nil, nil, err
	}
	az, err := authz.New(cat, verifier)
	if err != nil {
		verifier.Close()
		return nil, nil, err
	}
	return []connect.HandlerOption{connect.WithRequestGate(az.Gate()), connect.WithInterceptors(az.Interceptor())}, verifier, nil
}
