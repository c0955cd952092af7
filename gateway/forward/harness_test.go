package forward_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/services/licensing"
	"github.com/portcullis/portcullis/services/orders"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Headers the test backend sets on every response, to show that the
// gateway relays them.
const (
	backendHeader  = "Backend-Header"
	backendTrailer = "Backend-Trailer"
	requestIDKey   = "X-Request-Id"
	testClientID   = "client-test"
)

// backend is an example backend (licensing and orders) served over h2c,
// with an interceptor that records what each call saw, keyed by its
// X-Request-Id header.
type backend struct {
	url       string
	handler   http.Handler
	licensing *licensing.Service
	orders    *orders.Service
	calls     *recorder
}

func startBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{
		licensing: licensing.New(),
		orders:    orders.New(),
		calls:     newRecorder(),
	}
	mux := http.NewServeMux()
	mux.Handle(b.licensing.Handler(connect.WithInterceptors(b.calls)))
	mux.Handle(b.orders.Handler(connect.WithInterceptors(b.calls)))
	b.handler = mux
	b.url = h2ctest.Serve(t, mux)
	return b
}

// gatewayServices are the services the test gateway routes.
var gatewayServices = []protoreflect.ServiceDescriptor{
	licensingv1.File_example_licensing_v1_licensing_proto.Services().ByName("LicensingService"),
	ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService"),
}

// startGateway serves the forwarding handlers for both example services,
// forwarding to backendURL, and returns the gateway's URL. The gateway
// drops X-Secret and names the caller client-test, as the assembled
// gateway does from the verified token.
func startGateway(t testing.TB, backendURL string, backendOpts []forward.BackendOption, opts ...forward.Option) string {
	t.Helper()
	_, mux := newGateway(t, backendURL, backendOpts, opts...)
	return h2ctest.Serve(t, mux)
}

// newGateway returns the backend and the mux that startGateway serves.
// The backend logs nothing unless backendOpts say otherwise.
func newGateway(t testing.TB, backendURL string, backendOpts []forward.BackendOption, opts ...forward.Option) (*forward.Backend, *http.ServeMux) {
	t.Helper()
	be, err := forward.NewBackend(backendURL, append([]forward.BackendOption{forward.WithBackendLogger(nil)}, backendOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	opts = append([]forward.Option{
		forward.WithSensitiveHeaders("X-Secret"),
		forward.WithRequestHeaders(func(_ context.Context, h http.Header) {
			h.Set("Portcullis-Client-Id", testClientID)
		}),
		forward.WithLogger(nil),
	}, opts...)
	mux := http.NewServeMux()
	for _, svc := range gatewayServices {
		path, h, err := forward.NewHandler(svc, be, opts...)
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle(path, h)
	}
	return be, mux
}

// h2cClient is an HTTP client that speaks cleartext HTTP/2.
func h2cClient() *http.Client { return &http.Client{Transport: h2ctest.Transport()} }

// protocol is one way a connect-go client calls the gateway.
type protocol struct {
	name string
	opts []connect.ClientOption
}

var protocols = []protocol{
	{"connect", nil},
	{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

func licensingClient(url string, p protocol) licensingv1connect.LicensingServiceClient {
	return licensingv1connect.NewLicensingServiceClient(h2cClient(), url, p.opts...)
}

func ordersClient(url string, p protocol) ordersv1connect.OrdersServiceClient {
	return ordersv1connect.NewOrdersServiceClient(h2cClient(), url, p.opts...)
}

// grpcConn dials url with grpc-go, without TLS.
func grpcConn(t *testing.T, url string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// setRequestHeaders sets the headers every test call sends: an id to find
// the call at the backend, a token the backend may verify again, a secret
// the gateway must drop and a forged identity it must replace.
func setRequestHeaders(h http.Header, id string) {
	h.Set(requestIDKey, id)
	h.Set("Authorization", "Bearer test-token")
	h.Set("X-Secret", "do-not-forward")
	h.Set("Portcullis-Client-Id", "forged")
	h.Set("Portcullis_Tier", "forged")
	h.Set("Trace-Bin", connect.EncodeBinaryHeader(binaryValue))
}

// binaryValue is sent in a binary (-Bin) header.
var binaryValue = []byte{0, 1, 2, 0xff}

func newID() string { return rand.Text() }

// call is what the backend saw of one call.
type call struct {
	procedure   string
	header      http.Header
	deadline    time.Time
	hasDeadline bool
	done        chan struct{} // closed when the handler has returned
	err         error         // the handler's error
	ctxErr      error         // the handler context's error when it returned
}

// recorder is a connect.Interceptor that records calls and adds a header
// and a trailer to every response.
type recorder struct {
	mu      sync.Mutex
	calls   map[string]*call
	arrived chan struct{} // closed, and replaced, when a call arrives
}

func newRecorder() *recorder {
	return &recorder{calls: make(map[string]*call), arrived: make(chan struct{})}
}

func (r *recorder) start(ctx context.Context, spec connect.Spec, header http.Header) *call {
	c := &call{procedure: spec.Procedure, header: header.Clone(), done: make(chan struct{})}
	c.deadline, c.hasDeadline = ctx.Deadline()
	r.mu.Lock()
	r.calls[header.Get(requestIDKey)] = c
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.mu.Unlock()
	return c
}

func (c *call) finish(ctx context.Context, err error) {
	c.err, c.ctxErr = err, ctx.Err()
	close(c.done)
}

// seen returns the call with the given id, which must have reached the
// backend.
func (r *recorder) seen(t *testing.T, id string) *call {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.calls[id]
	if !ok {
		t.Fatalf("call %s never reached the backend", id)
	}
	return c
}

// reached reports whether the call with the given id reached the backend.
func (r *recorder) reached(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.calls[id]
	return ok
}

// finished waits until the call has reached the backend and its handler
// has returned.
func (r *recorder) finished(t *testing.T, id string) *call {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		c, ok := r.calls[id]
		arrived := r.arrived
		r.mu.Unlock()
		if ok {
			select {
			case <-c.done:
				return c
			case <-timeout:
				t.Fatalf("call %s still running at the backend", id)
			}
		}
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("call %s never reached the backend", id)
		}
	}
}

func (r *recorder) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		c := r.start(ctx, req.Spec(), req.Header())
		res, err := next(ctx, req)
		c.finish(ctx, err)
		if ce := new(connect.Error); errors.As(err, &ce) {
			ce.Meta().Set(backendHeader, "unary")
		}
		if res != nil {
			res.Header().Set(backendHeader, "unary")
			res.Trailer().Set(backendTrailer, "unary")
		}
		return res, err
	}
}

func (r *recorder) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r *recorder) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		c := r.start(ctx, conn.Spec(), conn.RequestHeader())
		conn.ResponseHeader().Set(backendHeader, "stream")
		err := next(ctx, conn)
		conn.ResponseTrailer().Set(backendTrailer, "stream")
		c.finish(ctx, err)
		return err
	}
}

// assertForwardedHeaders checks what reached the backend of the client's
// headers.
func assertForwardedHeaders(t *testing.T, got http.Header) {
	t.Helper()
	if v := got.Get("Authorization"); v != "Bearer test-token" {
		t.Errorf("backend got Authorization %q, want it forwarded", v)
	}
	if v, ok := got["X-Secret"]; ok {
		t.Errorf("backend got sensitive X-Secret %q", v)
	}
	if v := got.Values("Portcullis-Client-Id"); len(v) != 1 || v[0] != testClientID {
		t.Errorf("backend got Portcullis-Client-Id %q, want only the gateway's %q", v, testClientID)
	}
	for key := range got {
		if strings.HasPrefix(strings.ToLower(key), "portcullis_") {
			t.Errorf("backend got forged %s", key)
		}
	}
	if v, err := connect.DecodeBinaryHeader(got.Get("Trace-Bin")); err != nil || string(v) != string(binaryValue) {
		t.Errorf("backend got Trace-Bin %q (%v), want %q", got.Get("Trace-Bin"), err, binaryValue)
	}
}

// assertBackendMetadata checks that the backend's response header and
// trailer arrived.
func assertBackendMetadata(t *testing.T, header, trailer http.Header, want string) {
	t.Helper()
	if v := header.Get(backendHeader); v != want {
		t.Errorf("response header %s = %q, want %q (headers %v)", backendHeader, v, want, header)
	}
	if v := trailer.Get(backendTrailer); v != want {
		t.Errorf("response trailer %s = %q, want %q (trailers %v)", backendTrailer, v, want, trailer)
	}
}

// wantError checks a connect error's code and message.
func wantError(t *testing.T, err error, code connect.Code, message string) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a connect error with code %v", err, code)
	}
	if ce.Code() != code || ce.Message() != message {
		t.Fatalf("error = %v %q, want %v %q", ce.Code(), ce.Message(), code, message)
	}
	return ce
}
