package forward

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Unimplemented returns a handler that answers every request with
// Unimplemented ("unknown service example.v1.Service") in the caller's
// protocol, as a server that does not have the service would: mount it at
// the root ("/") of the mux that holds the forwarding handlers, so that a
// gRPC client calling an unrouted service gets status 12 rather than a
// transport error about a plain-text 404. gRPC gets a trailers-only
// answer with grpc-status 12, gRPC-Web the same in its headers, a Connect
// stream an end-of-stream message, and anything else (Connect unary, GET,
// unknown protocols) HTTP 404 with a Connect JSON error,
// {"code":"unimplemented","message":"..."}.
func Unimplemented() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		service, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		msg := "unknown service " + truncate(service)
		if !ok || service == "" {
			msg = "unknown procedure " + truncate(r.URL.Path)
		}
		writeUnimplemented(w, r, msg)
	})
}

// errorWriter writes errors in the protocol of the request.
var errorWriter = connect.NewErrorWriter()

// writeError answers r with err in the caller's protocol, without reading
// the request body.
func writeError(w http.ResponseWriter, r *http.Request, err *connect.Error) {
	dropUnreadBody(w, r)
	_ = errorWriter.Write(w, r, err)
}

// writeUnimplemented answers r with Unimplemented in the caller's protocol.
// The Connect protocol maps Unimplemented to HTTP 501; an unknown path
// gets 404 instead, which is what it is to a plain HTTP client, and which
// Connect clients also read as Unimplemented.
func writeUnimplemented(w http.ResponseWriter, r *http.Request, msg string) {
	err := connect.NewError(connect.CodeUnimplemented, errors.New(msg))
	ct := r.Header.Get("Content-Type")
	if r.Method == http.MethodPost && (hasPrefixFold(ct, "application/grpc") || hasPrefixFold(ct, "application/connect+")) {
		writeError(w, r, err)
		return
	}
	dropUnreadBody(w, r)
	body, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{connect.CodeUnimplemented.String(), msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(body)
}

// truncate shortens a name taken from the request for an error message.
func truncate(s string) string {
	const limit = 256
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
