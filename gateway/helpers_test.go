package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/revocation"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// decodeHeader returns the JOSE header of a compact JWS.
func decodeHeader(t *testing.T, tok string) map[string]string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	data, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range h {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// asConnectError is errors.As for a connect error.
func asConnectError(err error, ce **connect.Error) bool {
	return errors.As(err, ce)
}

// contains is strings.Contains.
func contains(s, sub string) bool { return strings.Contains(s, sub) }

// http2Cleartext is an h2c transport whose idle connections close when
// the test ends.
func http2Cleartext(t *testing.T) http.RoundTripper {
	tr := h2ctest.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// deadAddr is an address where nothing listens: port 1, which no test
// binds. A port that was free a moment ago would not do: a test running
// beside may listen on it.
const deadAddr = "127.0.0.1:1"

// stoppableFeed serves a revocation feed of iss until the test ends, and
// returns it, its URL, and the switch that, once stored true, makes it
// answer 502 to every request.
func stoppableFeed(t *testing.T, iss *issuertest.Issuer) (*revocation.Feed, string, *atomic.Bool) {
	t.Helper()
	feed, err := revocation.NewFeed(iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	down := new(atomic.Bool)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		feed.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return feed, srv.URL + "/revocations", down
}
