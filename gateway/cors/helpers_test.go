package cors_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/internal/gatewaytest"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
)

// counter is an inner handler that counts the requests reaching it and
// answers 200 with a header a script would read.
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.n.Add(1)
	w.Header().Set("Grpc-Status", "0")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "inner")
}

// stack is the token issuer, both example backends and a gateway in front
// of them, whose handler the test wraps.
type stack struct {
	issuer  *issuertest.Issuer
	gateway *gateway.Gateway
}

func newStack(t *testing.T) *stack {
	t.Helper()
	env := gatewaytest.Start(t)
	return &stack{issuer: env.Issuer, gateway: gatewaytest.New(t, env.Config(""))}
}

// request sends a request with the given headers and returns the response
// with its body read.
func request(t *testing.T, method, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// preflight sends the preflight a browser sends before a call from origin.
func preflight(t *testing.T, url, origin, method, headers string) *http.Response {
	t.Helper()
	h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	resp, _ := request(t, http.MethodOptions, url, "", h)
	return resp
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out[k] = v
		}
	}
	return out
}

// listHas reports whether the comma-separated header value holds name, in
// any case.
func listHas(value, name string) bool {
	for item := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(item), name) {
			return true
		}
	}
	return false
}
