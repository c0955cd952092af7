// Package gateway assembles Portcullis: from a configuration it builds the
// catalog of declared access, the token verifier, authorization, rate
// limiting, telemetry and descriptor-driven forwarding, and serves them.
//
//	cfg, err := config.Load("portcullis.yaml")
//	if err != nil {
//		log.Fatal(err)
//	}
//	gw, err := gateway.New(ctx, cfg)
//	if err != nil {
//		log.Fatal(err) // every routed method must declare its access
//	}
//	defer gw.Close()
//	log.Fatal(gw.ListenAndServe(ctx)) // until ctx is done, then drains
//
// Every call to a routed service passes, in order: telemetry (a span and
// metrics), authentication and authorization (a request gate that rejects
// on headers alone, before the body is read), rate limiting, and then the
// forwarding handler, which passes the payload bytes to the backend without
// decoding them.
package gateway
