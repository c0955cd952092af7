package rest

import "net/http"

// errorWriter labels REST error responses as the JSON they are. The
// transcoder writes every error as google.rpc.Status JSON, but when it
// fails a call while reading the request (a malformed body) it keeps the
// Content-Type of the RPC it was making, application/proto.
type errorWriter struct {
	http.ResponseWriter
}

func (w *errorWriter) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.Header().Set("Content-Type", "application/json")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush flushes a streamed response (a server stream of google.api.HttpBody).
func (w *errorWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
