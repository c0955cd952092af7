// Package webclient serves two small web pages on an origin of their own.
//
// The calling page, at /, calls the gateway from a browser: it gets a
// token from the token issuer by client credentials, calls the example
// licensing service over Connect (POST, and GET for methods declared
// side-effect free) and gRPC-Web with connect-web, shows the answers and,
// for refusals, the google.rpc.ErrorInfo detail, and lists a server
// stream's messages as they arrive. What each call requires is read from the protobuf options in the
// TypeScript that buf generates, the same declarations the gateway
// enforces.
//
// The provisioning page, at /admin.html, is a self-service console for the
// token issuer's clients: one signs in with client credentials, then
// lists, creates (the secret is shown once), re-grants, rotates and
// revokes clients through the issuer's administration service,
// portcullis.admin.v1.ClientAdminService (see issuer.WithAdmin), with
// connect-web. The issuer decides every call; the page shows its
// refusals, such as PermissionDenied naming the missing
// PORTCULLIS.MANAGE_CLIENTS, as they come.
//
// The pages' scripts are built from the TypeScript in src/ and gen/ by
// esbuild and committed as dist/app.js and dist/admin.js, so that building
// the Go package needs no npm:
//
//	npm ci                # in services/webclient
//	npm run generate      # gen/ from proto/, with the npm protoc-gen-es
//	npm run build         # type-check, then bundle dist/app.js and dist/admin.js
//
// Serve them with the URLs they should call:
//
//	h := webclient.Handler(webclient.Config{
//		GatewayURL: "http://127.0.0.1:8080",
//		IssuerURL:  "http://127.0.0.1:8081",
//	})
//	http.ListenAndServe("127.0.0.1:8084", h)
//
// The gateway and the issuer answer the pages only if their CORS settings
// allow their origin (here http://127.0.0.1:8084).
package webclient
