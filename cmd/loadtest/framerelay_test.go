package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// TestFrameRelayConformance: the frame relay, admitting every request, in
// front of net/http's HTTP/2 server, passes every case of h2spec (RFC 9113
// and RFC 7541, as a server): stream states, flow control, SETTINGS, PING,
// GOAWAY, RST_STREAM, frame sizes and malformed requests. With the policy
// on, the same machinery runs; there h2spec's requests, which carry no
// token, are refused, and the frames it then sends on the refused streams
// are ignored, as RFC 9113 section 5.1 asks after a RST_STREAM.
func TestFrameRelayConformance(t *testing.T) {
	// The backend answers once the request has ended, so that no case's
	// frames reach the relay after the backend closed the stream (after
	// which RFC 9113 has them ignored, and h2spec's verdict would depend
	// on timing); every answer has a body.
	backend := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.NotFound(w, r)
	}))
	relayURL := startGRPCRelay(t, "framerelay-open", backend, "")
	_, port, _ := strings.Cut(strings.TrimPrefix(relayURL, "http://"), ":")

	modfile, err := filepath.Abs("../../tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "tool", "-modfile="+modfile, "h2spec", "-h", "127.0.0.1", "-p", port, "-o", "5")
	out, err := cmd.CombinedOutput()
	summary := regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`).FindSubmatch(out)
	if summary == nil {
		t.Fatalf("h2spec: %v, no summary:\n%s", err, out)
	}
	n := func(i int) int { v, _ := strconv.Atoi(string(summary[i])); return v }
	if n(1) < 145 || n(2) != n(1) {
		t.Errorf("h2spec: %s, want every case passed:\n%s", summary[0], failures(out))
	}
}

// failures is the part of h2spec's output that lists the failed cases.
func failures(out []byte) string {
	_, after, ok := strings.Cut(string(out), "Failures:")
	if !ok {
		return string(out)
	}
	return after
}

// TestFrameRelayHostileCaller: a caller speaking raw HTTP/2 to the relay,
// with the policy on, cannot name itself to the backend in headers or in
// trailers, nor pass its token on; and a stream the relay refused costs
// it neither the connection nor its connection window.
func TestFrameRelayHostileCaller(t *testing.T) {
	mint, jwksFile := testIssuer(t)
	type seen struct{ header, trailer http.Header }
	saw := make(chan seen, 1)
	backend := h2ctest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the trailers arrive with the body's end
		saw <- seen{r.Header.Clone(), r.Trailer.Clone()}
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "0")
		w.WriteHeader(http.StatusOK)
	}))
	relayURL := startGRPCRelay(t, "framerelay", backend, jwksFile)
	conn, err := net.Dial("tcp", strings.TrimPrefix(relayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	headers := func(id uint32, end bool, fields ...string) {
		t.Helper()
		block.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	request := func(id uint32, token string) {
		headers(id, false, ":method", "POST", ":scheme", "http", ":authority", "relay", ":path", ordersv1connect.OrdersServicePlaceOrderProcedure,
			"content-type", "application/grpc", "te", "trailers", "authorization", "Bearer "+token,
			"trailer", "portcullis-client-id, portcullis_tier, x-caller-trailer",
			"portcullis-client-id", "mallory", "x-caller", "c")
	}
	// window is the caller's connection window: what it may still send.
	window := int64(65535)
	// ends reads frames until stream id ends (or, with id 0, until the
	// window is whole again), and returns its grpc-status.
	ends := func(id uint32) string {
		t.Helper()
		var status string
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("waiting for stream %d: %v", id, err)
			}
			switch f := f.(type) {
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					window += int64(f.Increment)
					if id == 0 && window >= 65535 {
						return ""
					}
				}
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v while waiting for stream %d", f.ErrCode, id)
			case *http2.MetaHeadersFrame:
				if f.StreamID == id {
					if v := f.PseudoValue("status"); v != "" && v != "200" {
						t.Fatalf("stream %d: status %s", id, v)
					}
					for _, hf := range f.RegularFields() {
						if hf.Name == "grpc-status" {
							status = hf.Value
						}
					}
					if f.StreamEnded() {
						return status
					}
				}
			case *http2.DataFrame:
				if f.StreamID == id && f.StreamEnded() {
					return status
				}
			}
		}
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}

	// Refused: no valid token. Its DATA, the whole connection window, is
	// sent anyway, as a caller's frames in flight would be: the relay
	// drops them, and must give the window back itself.
	request(1, "not-a-token")
	if got := ends(1); got != "16" {
		t.Fatalf("stream 1 without a valid token: grpc-status %q, want 16 (unauthenticated)", got)
	}
	for window > 0 {
		n := min(window, 16<<10)
		if err := fr.WriteData(1, false, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		window -= n
	}
	ends(0) // fails on the deadline if the window never comes back

	// Admitted: a gRPC message, then trailers naming the caller.
	request(3, mustToken(t, mint, claims{}))
	if err := fr.WriteData(3, false, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	headers(3, true, "portcullis-client-id", "mallory", "portcullis_tier", "gold", "x-caller-trailer", "t")
	if got := ends(3); got != "0" {
		t.Fatalf("stream 3: grpc-status %q, want 0", got)
	}
	s := <-saw
	if got := s.header.Values("Portcullis-Client-Id"); len(got) != 1 || got[0] != "loadtest" {
		t.Errorf("the backend saw portcullis-client-id %q, want the token's loadtest alone", got)
	}
	if got := s.header.Get("Authorization"); got != "" {
		t.Errorf("the backend saw the caller's authorization header")
	}
	if got := s.header.Get("X-Caller"); got != "c" {
		t.Errorf("the backend saw x-caller %q, want c", got)
	}
	for _, k := range []string{"Portcullis-Client-Id", "Portcullis_tier"} {
		if v := s.trailer.Values(k); len(v) > 0 {
			t.Errorf("the backend saw the caller's trailer %s: %q", k, v)
		}
	}
	if got := s.trailer.Get("X-Caller-Trailer"); got != "t" {
		t.Errorf("the backend saw trailers %v, want the caller's x-caller-trailer", s.trailer)
	}
}
