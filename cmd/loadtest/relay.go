package main

import (
	"context"
	"errors"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/forward"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/token"

	_ "github.com/portcullis/portcullis/gen/example/licensing/v1" // the LIC domain, into protoregistry.GlobalFiles
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"    // the methods and the ORD domain
)

// An experiment, not part of the gateway: the same-protocol byte relay.
// When the caller and the backend speak the same protocol, the gateway
// need not run connect-go's handler and client around its pass-through
// codec: it can decide on the headers, then relay the request and the
// response, bytes and trailers, with net/http's reverse proxy. The relay
// runs the gateway's own policy code, authz.Check (verification with its
// cache, the AND check) and the in-memory limiter, and nothing else: no
// telemetry, no message size limits, refusals as bare HTTP statuses. It is
// what `-experiment relay` measures beside the gateway, as its own process:
//
//	loadtest relay -listen ADDR -backend URL -jwks FILE

// viaRelay is the experiment's target.
const viaRelay target = "relay"

// serveRelay relays the calls that ln accepts to backend, the URL of an
// h2c server, until ctx is done.
func serveRelay(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	h, err := newRelay(ctx, backend, jwksFile)
	if err != nil {
		_ = ln.Close()
		return err
	}
	return serveH2C(ctx, ln, h)
}

// relayTransport is the relays' HTTP/2 client to the h2c backend.
func relayTransport() *http.Transport {
	tr := &http.Transport{Protocols: new(http.Protocols), MaxIdleConnsPerHost: 100}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return tr
}

// serveH2C serves h over h2c on ln until ctx is done.
func serveH2C(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serveGRPC serves every method with handle on grpc-go's server, with the
// pass-through codec and no message size limits (as the relay has none),
// until ctx is done.
func serveGRPC(ctx context.Context, ln net.Listener, handle grpc.StreamHandler) error {
	srv := grpc.NewServer(
		grpc.UnknownServiceHandler(handle),
		grpc.ForceServerCodecV2(passthroughCodec{}),
		grpc.MaxRecvMsgSize(math.MaxInt32),
		grpc.MaxSendMsgSize(math.MaxInt32),
	)
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	return srv.Serve(ln) // nil once stopped
}

// relay decides each call as the gateway does, then relays its bytes.
type relay struct {
	*policy
	proxy *httputil.ReverseProxy
}

// policy is the gateway's own policy code, as the experiments run it:
// authz.Check with its verified-token cache, and the in-memory limiter
// with the bench tier's limit.
type policy struct {
	authorizer *authz.Authorizer
	limiter    *ratelimit.Memory
	limit      ratelimit.Limit
}

// newPolicy builds the policy of the bench: the example catalog, tokens of
// the load generator's issuer whose keys are in jwksFile.
func newPolicy(ctx context.Context, jwksFile string) (*policy, error) {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		return nil, err
	}
	v, err := token.NewVerifier(ctx, []token.Issuer{{Issuer: "loadtest", Audiences: []string{"portcullis"}, JWKSFile: jwksFile, Algorithms: []string{"ES256"}}})
	if err != nil {
		return nil, err
	}
	a, err := authz.New(cat, v)
	if err != nil {
		return nil, err
	}
	mem, err := ratelimit.NewMemory()
	if err != nil {
		return nil, err
	}
	return &policy{
		authorizer: a,
		limiter:    mem,
		// The gateway's bench tier: nothing is refused.
		limit: ratelimit.Limit{Requests: 1_000_000, Period: time.Second, Burst: 1_000_000},
	}, nil
}

func newRelay(ctx context.Context, backend, jwksFile string) (*relay, error) {
	pol, err := newPolicy(ctx, jwksFile)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(backend)
	if err != nil {
		return nil, err
	}
	tr := relayTransport()
	return &relay{
		policy: pol,
		proxy: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				r.Out.Host = u.Host
			},
			Transport:     tr,
			FlushInterval: -1, // streams: every write goes out at once
			ErrorLog:      log.New(os.Stderr, "relay: ", 0),
		},
	}, nil
}

func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := rl.authorizer.Check(r.Context(), r.URL.Path, r.Header)
	if err != nil {
		http.Error(w, "refused", statusOf(err))
		return
	}
	if p == nil {
		http.Error(w, "refused", http.StatusUnauthorized)
		return
	}
	res, err := rl.limiter.Allow(r.Context(), p.ClientID, rl.limit, 1)
	if err != nil || !res.Allowed {
		http.Error(w, "refused", http.StatusTooManyRequests)
		return
	}
	for k := range r.Header {
		if strings.HasPrefix(k, forward.ReservedHeaderPrefix) {
			delete(r.Header, k)
		}
	}
	r.Header.Del("Authorization")
	r.Header.Set(forward.ClientIDHeader, p.ClientID)
	r.Header.Set(forward.TierHeader, p.Tier)
	rl.proxy.ServeHTTP(w, r)
}

// statusOf is the HTTP status of a refusal: authz refuses with connect
// errors, whose codes map to statuses as the Connect protocol maps them.
func statusOf(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}
