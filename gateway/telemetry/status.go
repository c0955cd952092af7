package telemetry

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"connectrpc.com/connect"
)

// responseStatus reads what a client of protocol got from a response the
// edge saw written: the code, the error's message and the HTTP status.
func responseStatus(w *responseWriter, protocol string) (code connect.Code, message string, status int) {
	status = w.status
	if status == 0 {
		status = http.StatusOK // what the server sends for a handler that wrote nothing
	}
	switch protocol {
	case connect.ProtocolGRPC, connect.ProtocolGRPCWeb:
		h := w.Header()
		v, ok := trailer(h, "Grpc-Status")
		m, _ := trailer(h, "Grpc-Message")
		if !ok && w.end&flagGRPCWebTrailers != 0 {
			block := endOfStream(w, "Grpc-Encoding")
			v, ok = webTrailer(block, "grpc-status")
			m, _ = webTrailer(block, "grpc-message")
		}
		if ok {
			code = connect.CodeUnknown
			if n, err := strconv.ParseUint(v, 10, 32); err == nil {
				code = connect.Code(n)
			}
			if decoded, err := url.PathUnescape(m); err == nil {
				m = decoded
			}
			return code, m, status
		}
		if status == http.StatusOK {
			// A gRPC response without a status: its clients see an error.
			return connect.CodeUnknown, "no grpc-status in the response", status
		}
	default:
		switch {
		case w.framed && w.end != 0:
			if code, message, ok := connectError(endOfStream(w, "Connect-Content-Encoding"), `{"error":{"code":"`); ok {
				return code, message, status
			}
		case status != http.StatusOK:
			if code, message, ok := connectError(w.sniff, `{"code":"`); ok {
				return code, message, status
			}
		}
		if status < 400 { // a success, a redirect, a CORS preflight's answer
			return 0, "", status
		}
	}
	return httpToCode(status), http.StatusText(status), status
}

// endOfStream returns the start of the stream's last message, decompressed
// by the response's encoding (named in its header encodingKey) if need be:
// gzip, connect's, or nothing.
func endOfStream(w *responseWriter, encodingKey string) []byte {
	if w.end&flagCompressed == 0 {
		return w.sniff
	}
	if w.Header().Get(encodingKey) != "gzip" {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.sniff))
	if err != nil {
		return nil
	}
	out := make([]byte, sniffLen)
	n, _ := io.ReadFull(zr, out) // what there is of it
	return out[:n]
}

// trailer returns a header's value from the headers or the trailers of a
// response written to h.
func trailer(h http.Header, key string) (string, bool) {
	if v := h.Values(key); len(v) > 0 {
		return v[0], true
	}
	if v := h.Values(http.TrailerPrefix + key); len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// webTrailer returns a trailer's value from the start of gRPC-Web's
// trailers message: lines of "key: value", keys in lower case.
func webTrailer(block []byte, key string) (string, bool) {
	for line := range bytes.SplitSeq(block, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte{':'})
		if ok && string(bytes.TrimSpace(k)) == key {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// connectError reads the code and message of a Connect error from the
// start of its JSON, which begins with prefix up to the code's name: a
// unary call's error, or a stream's end-of-stream message. The message is
// "" when the JSON's start does not hold it all.
func connectError(body []byte, prefix string) (connect.Code, string, bool) {
	rest, ok := bytes.CutPrefix(body, []byte(prefix))
	if !ok {
		return 0, "", false
	}
	name, rest, ok := bytes.Cut(rest, []byte{'"'})
	var code connect.Code
	if !ok || code.UnmarshalText(name) != nil {
		return 0, "", false
	}
	var message string
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"message":`)); ok {
		if end := jsonStringEnd(rest); end > 0 {
			_ = json.Unmarshal(rest[:end], &message)
		}
	}
	return code, message, true
}

// jsonStringEnd returns the length of the JSON string b starts with, or 0
// if b does not hold all of it.
func jsonStringEnd(b []byte) int {
	if len(b) == 0 || b[0] != '"' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return 0
}

// httpToCode is the code a client infers from an HTTP status when the
// response carries none, as connect-go and gRPC map them.
func httpToCode(status int) connect.Code {
	switch status {
	case 400:
		return connect.CodeInternal
	case 401:
		return connect.CodeUnauthenticated
	case 403:
		return connect.CodePermissionDenied
	case 404:
		return connect.CodeUnimplemented
	case 429, 502, 503, 504:
		return connect.CodeUnavailable
	}
	return connect.CodeUnknown
}
