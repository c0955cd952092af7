package main

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/h2ctest"
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
