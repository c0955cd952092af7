// Package webclient serves a small web page that calls the gateway from a
// browser, on an origin of its own: it gets a token from the token issuer
// by client credentials, calls the example licensing service over Connect
// (POST, and GET for methods declared side-effect free) and gRPC-Web with
// connect-web, shows the answers and, for refusals, the
// google.rpc.ErrorInfo detail, and lists a server stream's messages as they
// arrive. What each call requires is read from the protobuf options in the
// TypeScript that buf generates, the same declarations the gateway
// enforces.
//
// The page's script is built from the TypeScript in src/ and gen/ by
// esbuild and committed as dist/app.js, so that building the Go package
// needs no npm:
//
//	npm ci                # in services/webclient
//	npm run generate      # gen/ from proto/, with the npm protoc-gen-es
//	npm run build         # type-check, then bundle dist/app.js
//
// Serve it with the URLs it should call:
//
//	h := webclient.Handler(webclient.Config{
//		GatewayURL: "http://127.0.0.1:8080",
//		IssuerURL:  "http://127.0.0.1:8081",
//	})
//	http.ListenAndServe("127.0.0.1:8084", h)
//
// The gateway and the issuer answer the page only if their CORS settings
// allow its origin (here http://127.0.0.1:8084).
package webclient
