// Package forward relays RPCs to backends without decoding them. For each
// routed service it builds, from the service's descriptor (compiled in or
// loaded from a buf image), one connect.Handler per method, so that clients
// may call the gateway with Connect (binary or JSON, and GET for methods
// declared NO_SIDE_EFFECTS), gRPC or gRPC-Web, unary or streaming in either
// direction. Each message is copied through as bytes and sent on to the
// backend with a connect client speaking gRPC (or Connect, or gRPC-Web) in
// the encoding the caller used.
//
// The handlers carry what a caller expects of the backend itself: request
// headers (less hop-by-hop, protocol and configured sensitive ones, and any
// header starting with [ReservedHeaderPrefix], which only the gateway may
// set); response headers and trailers; error codes, messages and details;
// deadlines, capped by [WithMaxTimeout]; cancellation and back-pressure in
// both directions. A backend that cannot be reached fails the call with
// Unavailable, without revealing its address.
//
// Interceptors, request gates and other connect options given with
// [WithHandlerOptions] run on every method and see its
// protoreflect.MethodDescriptor as Spec().Schema:
//
//	backend, err := forward.NewBackend("http://127.0.0.1:8081") // h2c, gRPC
//	if err != nil {
//		return err
//	}
//	defer backend.Close()
//	svc := ordersv1.File_example_orders_v1_orders_proto.Services().ByName("OrdersService")
//	path, handler, err := forward.NewHandler(svc, backend,
//		forward.WithHandlerOptions(connect.WithInterceptors(authn, authz)),
//		forward.WithRequestHeaders(func(ctx context.Context, h http.Header) {
//			if p, ok := token.FromContext(ctx); ok {
//				h.Set("Portcullis-Client-Id", p.ClientID)
//			}
//		}),
//	)
//	if err != nil {
//		return err
//	}
//	mux := http.NewServeMux()
//	mux.Handle(path, handler)
//	mux.Handle("/", forward.Unimplemented())
//	// serve mux over HTTP/2: h2c, or TLS (package gateway does both)
//
// Mount [Unimplemented] at the mux's root, so that calls of unrouted
// services get Unimplemented in the caller's protocol, as unknown methods
// of routed services do.
//
// # gRPC on grpc-go's transport
//
// [Service.ServeGRPC] serves the same methods to gRPC callers that a
// grpc.Server (google.golang.org/grpc) took, built with
// [GRPCServerOptions] and an unknown-service handler: the same gate
// ([WithGate]), interceptors ([WithInterceptors], through their
// WrapStreamingHandler) and forwarding, with messages passed through as
// bytes. grpc-go's server costs less CPU per call than net/http's HTTP/2
// server and connect's handlers; it speaks only gRPC. [ServeGRPCOverHTTP]
// serves the calls no Service forwards with an http.Handler, such as the
// health and reflection handlers beside the services. Two behaviours
// differ from the http.Handler's, both grpc-go's: a message over the limit
// is refused with grpc-go's own message, and a request cut off by the
// body or idle timeout ends with DeadlineExceeded and grpc-go's message
// ("context deadline exceeded"), since grpc-go answers a read it ends
// itself.
//
// # Limits
//
// A request costs the gateway in proportion to what it forwards, never to
// what a client merely declares or compresses. connect refuses a message
// over the limit only after reading it (and, if compressed, inflating it)
// in full, to report its size, so the handlers read request bodies through
// their own reader and decompressor: a message over [WithMaxMessageBytes]
// is refused with ResourceExhausted as soon as the request's
// Content-Length or the message's length prefix declares it, before its
// bytes are read, and a gzip message stops inflating at the limit (a 2 MB
// gzip bomb that inflates to 2 GiB costs what inflating 4 MiB costs).
// The time a request may take to arrive is bounded too:
// [WithRequestBodyTimeout] for unary calls and server streams,
// [WithStreamIdleTimeout] for the silences of client and bidi streams. A
// malformed HTTP/1.1 body (bad chunked encoding) is refused with
// InvalidArgument.
//
// # Backends
//
// A backend that cannot be reached, or whose connection breaks, even in
// the middle of a stream, fails the call with Unavailable. The [Backend]
// keeps its health from the outcome of calls and, with [WithHealthCheck],
// from a probe: [Backend.Err] feeds readiness checks, [Backend.FailedCalls]
// a metric, and an outage is logged when it starts and when it ends, not
// once per failed call. [WithStop] ends the calls still in flight when a
// graceful drain is over.
//
// A Backend may have many endpoints, the replicas of one service: fixed
// URLs ([NewBackendEndpoints]) and the addresses of a DNS name
// ([WithDNS]). Each call goes to one of them, chosen by [WithBalancer],
// over that endpoint's own connections; an endpoint that fails its health
// check, or calls in a row ([WithOutlierDetection]), leaves the rotation
// for a while; a call that a retry cannot harm is sent again to another
// endpoint, within a budget ([WithRetries]). [Backend.Endpoints] reports
// each endpoint's state and counters.
//
// The balancing is the package's own, over connect-go clients, rather
// than grpc-go's ClientConn with its resolvers, balancers and outlier
// detection: a ClientConn speaks only gRPC, while a Backend also speaks
// Connect and gRPC-Web, and it measured no cheaper per call carrying
// bytes through (BenchmarkBalancing). Choosing an endpoint costs an
// atomic load of the endpoint set and, for least_request, two random
// numbers; nothing on the call's path takes a lock unless the call may be
// retried.
package forward
