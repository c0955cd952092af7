// Package rest serves the REST routes that services declare with
// google.api.http options, in front of the handler of their RPCs. A REST
// call is resolved to its method and transcoded, by connectrpc.com/vanguard,
// into a Connect call to that handler at the method's RPC path: the call
// then takes exactly the path of an RPC (authentication, the permission
// check, rate limits, telemetry, the access log, forwarding), and its
// result or refusal comes back as REST.
//
//	option (google.api.http) = {
//	  get: "/v1/{name=shelves/*/books/*}"
//	  additional_bindings: {post: "/v1/{parent=shelves/*}/books" body: "book"}
//	};
//
//	h, err := rest.New(services, mux) // mux serves "/pkg.Service/" RPC paths
//	if err != nil {
//		return err
//	}
//	srv.Handler = h
//
// Every binding kind is served: path variables (single and multi-segment,
// on nested fields), query parameters for the fields that neither the path
// nor the body take, body "*" or a named field, response_body, custom
// methods and verbs, and additional_bindings. Errors are the google.rpc.Status
// JSON of google.api.http ({"code": 5, "message": "...", "details": [...]})
// with the HTTP status of the code (NotFound 404, PermissionDenied 403,
// Unauthenticated 401, ResourceExhausted 429, Unavailable 503, ...), and the
// refusal's headers (WWW-Authenticate, Retry-After, RateLimit) kept.
//
// # RPCs pass untouched
//
// A request to a service's RPC path ("/pkg.Service/Method"), in Connect,
// gRPC or gRPC-Web, goes to the next handler as it came: not decoded, not
// re-encoded, not even seen by the transcoder, which would clone its
// headers and build its state for each call only to pass it on. RPC paths
// win over REST templates: New refuses a template under an RPC path. So do
// requests that match no REST route (reflection, unknown paths): the next
// handler answers them, 404s included.
//
// # Descriptors loaded at run time
//
// Services may come from buf images: their options are read whether they
// are decoded or held as unknown fields, and their messages are dynamic
// messages of their files unless [WithTypeResolver] says otherwise.
//
// # Transcoding
//
// A REST call becomes a Connect unary call in binary protobuf by default
// ([WithTargetCodec]), which every backend accepts, gRPC-only ones too.
// Request bodies are JSON (or a google.api.HttpBody's raw content); unknown
// JSON fields are ignored, unknown query parameters refused (400). Bodies
// and messages are bounded by [WithMaxMessageBytes]. Streaming RPCs have
// no REST form unless their messages are google.api.HttpBody.
package rest
