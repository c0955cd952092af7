package forward_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"github.com/portcullis/portcullis/gateway/forward"
)

// observer is middleware in front of the gateway that sees what the
// gateway's handlers do with a request: how many bytes of its body they
// read, and how many handlers are still running.
type observer struct {
	next     http.Handler
	read     atomic.Int64 // request body bytes read by the handlers
	inFlight atomic.Int64 // handlers running
}

func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.inFlight.Add(1)
	defer o.inFlight.Add(-1)
	r.Body = &countingBody{ReadCloser: r.Body, n: &o.read}
	o.next.ServeHTTP(w, r)
}

// idle waits until no handler runs, and fails the test if one still does
// after timeout: a call's stream or connection must be freed.
func (o *observer) idle(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for o.inFlight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers still running after %v", o.inFlight.Load(), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// startObservedGateway is startGateway behind an observer.
func startObservedGateway(t *testing.T, backendURL string, opts ...forward.Option) (string, *observer) {
	t.Helper()
	_, mux := newGateway(t, backendURL, nil, opts...)
	o := &observer{next: mux}
	return h2ctest.Serve(t, o), o
}

// wire is one way to put an RPC on the wire by hand, for what RPC clients
// do not send: bodies that never end, huge declared sizes, gzip bombs,
// malformed framing.
type wire struct {
	name        string
	contentType string
	enveloped   bool
	// compression is the header that names the request's compression.
	compression string
}

var (
	wireConnect       = wire{name: "connect", contentType: "application/proto", compression: "Content-Encoding"}
	wireConnectStream = wire{name: "connect stream", contentType: "application/connect+proto", enveloped: true, compression: "Connect-Content-Encoding"}
	wireGRPC          = wire{name: "grpc", contentType: "application/grpc", enveloped: true, compression: "Grpc-Encoding"}
	wireGRPCWeb       = wire{name: "grpcweb", contentType: "application/grpc-web+proto", enveloped: true, compression: "Grpc-Encoding"}
)

// envelope frames payload as gRPC and Connect streaming do: a flags byte
// and a 4-byte big-endian length.
func envelope(flags byte, payload []byte) []byte {
	out := make([]byte, 5, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(payload)))
	return append(out, payload...)
}

// newRawRequest returns a POST of body to the gateway's procedure in the
// wire's protocol.
func newRawRequest(t *testing.T, gw, procedure string, wr wire, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gw+procedure, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", wr.contentType)
	if wr.contentType == wireGRPC.contentType {
		req.Header.Set("Te", "trailers")
	}
	return req
}

// rpcStatus is the outcome of a call as a raw response carries it.
type rpcStatus struct {
	code    connect.Code
	message string
}

// readStatus reads the whole response and returns the call's status in
// the wire's protocol: the JSON error of a Connect unary call, the
// end-stream message of a Connect stream, the grpc-status trailer (or
// header, for trailers-only answers) of gRPC, the trailer frame (or
// headers) of gRPC-Web. An OK call has code 0.
func readStatus(t *testing.T, wr wire, res *http.Response) rpcStatus {
	t.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: reading the response: %v", wr.name, err)
	}
	switch wr {
	case wireConnect:
		if res.StatusCode == http.StatusOK {
			return rpcStatus{}
		}
		return connectJSONStatus(t, body)
	case wireConnectStream:
		frame, ok := lastFrame(body, 2) // end of stream
		if !ok {
			t.Fatalf("connect stream: HTTP %d without an end-stream message", res.StatusCode)
		}
		var end struct {
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(frame, &end); err != nil {
			t.Fatalf("end-stream message %q: %v", frame, err)
		}
		if end.Error == nil {
			return rpcStatus{}
		}
		return connectJSONStatus(t, end.Error)
	case wireGRPC:
		return grpcStatus(t, res.Header, res.Trailer)
	case wireGRPCWeb:
		trailer := make(http.Header)
		if frame, ok := lastFrame(body, 0x80); ok { // trailers
			r := bufio.NewReader(bytes.NewReader(append(frame, '\r', '\n')))
			for {
				line, err := r.ReadString('\n')
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
					trailer.Add(k, strings.TrimSpace(v))
				}
				if err != nil {
					break
				}
			}
		}
		return grpcStatus(t, res.Header, trailer)
	}
	t.Fatalf("unknown wire %s", wr.name)
	return rpcStatus{}
}

// lastFrame returns the payload of the last enveloped message in body
// whose flags have flag set.
func lastFrame(body []byte, flag byte) (frame []byte, ok bool) {
	for len(body) >= 5 {
		flags, size := body[0], binary.BigEndian.Uint32(body[1:5])
		if flags&flag != 0 {
			frame, ok = body[5:5+size], true
		}
		body = body[5+size:]
	}
	return frame, ok
}

func connectJSONStatus(t *testing.T, body []byte) rpcStatus {
	t.Helper()
	var wireErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &wireErr); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(wireErr.Code)); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return rpcStatus{code: code, message: wireErr.Message}
}

func grpcStatus(t *testing.T, header, trailer http.Header) rpcStatus {
	t.Helper()
	status, message := trailer.Get("Grpc-Status"), trailer.Get("Grpc-Message")
	if status == "" { // trailers-only
		status, message = header.Get("Grpc-Status"), header.Get("Grpc-Message")
	}
	n, err := strconv.Atoi(status)
	if err != nil {
		t.Fatalf("grpc-status %q (header %v, trailer %v)", status, header, trailer)
	}
	if unescaped, err := percentDecode(message); err == nil {
		message = unescaped
	}
	return rpcStatus{code: connect.Code(n), message: message}
}

// percentDecode undoes gRPC's percent-encoding of grpc-message.
func percentDecode(s string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			out.WriteByte(byte(b))
			i += 2
			continue
		}
		out.WriteByte(s[i])
	}
	return out.String(), nil
}

// wantStatus checks a call's code and that its message contains want.
func wantStatus(t *testing.T, name string, got rpcStatus, code connect.Code, want string) {
	t.Helper()
	if got.code != code || !strings.Contains(got.message, want) {
		t.Errorf("%s: status %v %q, want %v with %q", name, got.code, got.message, code, want)
	}
}

// pipeBody returns a request body that the test writes by hand. It ends
// when ctx is done, so that a client waiting for it to be sent (net/http's
// HTTP/1.1 transport does) gives up too, and when the test ends.
func pipeBody(t *testing.T, ctx context.Context) (io.Reader, *io.PipeWriter) {
	t.Helper()
	pr, pw := io.Pipe()
	stop := context.AfterFunc(ctx, func() { _ = pw.CloseWithError(ctx.Err()) })
	t.Cleanup(func() {
		stop()
		_ = pw.Close()
	})
	return pr, pw
}

// rawHTTP1 writes request, the head of an HTTP/1.1 request and what the
// client sends of its body, on a new connection to the gateway, and
// returns the response and the reader of what follows it.
func rawHTTP1(t *testing.T, gw, request string) (*http.Response, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second)) // the test's own bound
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, r
}

// wantClosed checks that the gateway closed the connection after the
// response, whose body the caller has read.
func wantClosed(t *testing.T, r *bufio.Reader) {
	t.Helper()
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("connection still open: %v", err)
	}
}
