// Package gateway assembles Portcullis: from a configuration it builds the
// catalog of declared access, the token verifier (with revocations and
// introspection), authorization, rate limiting and the address guard,
// telemetry, CORS and REST routes, and descriptor-driven forwarding, and
// serves them.
//
//	cfg, err := config.Load("portcullis.yaml")
//	if err != nil {
//		log.Fatal(err) // every mistake, with its line and path
//	}
//	gw, err := gateway.New(ctx, cfg)
//	if err != nil {
//		log.Fatal(err) // every routed method must declare its access
//	}
//	defer gw.Close()
//	log.Fatal(gw.ListenAndServe(ctx)) // until ctx is done, then drains
//
// The path of a call is stated in one place, chain.go, first is
// outermost: at the edge, CORS, the identity of the call's client
// certificate, telemetry of calls refused before the decision, the URL a
// DPoP proof must name, and REST routes; then a request gate that decides
// on the headers alone, before the body is read (a route's required
// client certificate, the address guard, the token, its DPoP proof or
// client certificate binding and the AND check, the rate limit),
// telemetry's server interceptor and the
// stream message limit; then the forwarding handler, which passes the
// payload bytes to a backend without decoding them.
//
// The main listener also answers grpc.health.v1.Health and gRPC reflection
// for the routed services; the admin listener serves /healthz, /readyz,
// /metrics and the permission graph at /graph. With grpc_listen, a third
// listener serves gRPC callers alone on grpc-go's transport, through the
// same edge, decision and forwarding, at less CPU per call. On shutdown
// the gateway drains: see [Gateway.ServeListeners].
//
// [Gateway.Reload] replaces the configuration while the gateway serves,
// without dropping a call: each configuration is a generation, built and
// validated whole beside the one serving, then swapped in at once; calls
// finish on the generation they started on. The admin listener's POST
// /admin/reload, a watch of the configuration file and of the files it
// names that a reload reads and, in cmd/portcullis, SIGHUP reload it. A route's descriptors may come from its backend's gRPC
// reflection, refreshed into a new generation when they change.
package gateway
