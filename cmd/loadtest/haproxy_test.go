package main

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/services/orders"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
)

// peerStack is HAProxy with the bench's configuration in front of the
// orders service, served in the test.
func peerStack(t *testing.T) *stack {
	t.Helper()
	for _, tool := range []string{"haproxy", "h2load"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: make bench-tools installs the bench's peers", tool)
		}
	}
	key, err := newSigningKey("loadtest")
	if err != nil {
		t.Fatal(err)
	}
	_, h := orders.New().Handler()
	s := &stack{backendURL: h2ctest.Serve(t, h), tokens: &tokenMint{key: key}, work: t.TempDir(), rates: map[string]float64{}}
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	var raw ecdsa.PublicKey
	if err := pub.Raw(&raw); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr()
	cfg, err := writeHAProxyConfig(s.work, addr, s.backendURL, &raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkHAProxy(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if s.haproxy, err = start(context.Background(), "haproxy", nil, "haproxy", "-db", "-f", cfg); err != nil {
		t.Fatal(err)
	}
	s.haproxyURL = "http://" + addr
	t.Cleanup(s.stop)
	if err := waitTCP(t.Context(), addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHAProxyPolicy: the peer enforces what the gateway does, in both
// protocols: a valid token passes; no token, an expired one, one signed by
// another key, for another audience or missing either of the method's
// permissions are refused; and the backend learns the caller from the
// token, not from a header the caller sends.
func TestHAProxyPolicy(t *testing.T) {
	s := peerStack(t)
	if err := s.checkPolicy(t.Context(), viaHAProxy); err != nil {
		t.Fatal(err)
	}

	tok, err := s.tokens.token(claims{})
	if err != nil {
		t.Fatal(err)
	}
	client := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(t), s.haproxyURL, connect.WithGRPC())
	req := connect.NewRequest(&ordersv1.PlaceOrderRequest{Order: &ordersv1.Order{CustomerId: "cust-1", Skus: []string{"sku-1"}}})
	req.Header().Set("Authorization", "Bearer "+tok)
	req.Header().Set(identityHeader, "mallory")
	res, err := client.PlaceOrder(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.GetOrder().GetPlacedBy(); got != "loadtest" {
		t.Errorf("placed_by = %q, want the token's client_id loadtest", got)
	}

	// A method outside the policy's map is refused before anything else.
	other := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(t), s.haproxyURL)
	get := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "ord-0001"})
	get.Header().Set("Authorization", "Bearer "+tok)
	if _, err := other.GetOrder(t.Context(), get); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("GetOrder through the peer: %v, want unimplemented (HTTP 404)", err)
	}
}

// TestH2loadChecked: an h2load run passes its check only when every call
// placed an order: a refusal by HTTP status fails it, and so does a gRPC
// error, which h2load counts as a success (HTTP 200, status in trailers).
func TestH2loadChecked(t *testing.T) {
	s := peerStack(t)
	body, err := placeOrderBody(s.order(scenario{size: small}))
	if err != nil {
		t.Fatal(err)
	}
	header := func(c claims) http.Header {
		tok, err := s.tokens.token(c)
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "Authorization": {"Bearer " + tok}}
	}
	valid := header(claims{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	run := func(url string, h http.Header) error {
		seq0, err := probeGRPC(ctx, s.haproxyURL, valid, body)
		if err != nil {
			t.Fatal(err)
		}
		r, err := runH2load(ctx, s.work, url, h, body, 2, 4, 300)
		if err != nil {
			t.Fatal(err)
		}
		seq1, err := probeGRPC(ctx, s.haproxyURL, valid, body)
		if err != nil {
			t.Fatal(err)
		}
		return r.check(300, seq1-seq0-1)
	}
	if err := run(s.haproxyURL, valid); err != nil {
		t.Errorf("valid calls through HAProxy: %v", err)
	}
	if err := run(s.haproxyURL, header(claims{perms: map[string]uint64{"ORD": 1, "LIC": 7}})); err == nil || !strings.Contains(err.Error(), "HTTP status other than 200") {
		t.Errorf("calls refused with 403: %v", err)
	}
	// Direct, without the identity header: the backend answers every
	// call with HTTP 200 and grpc-status 16 in trailers.
	if err := run(s.backendURL, valid); err == nil || !strings.Contains(err.Error(), "placed 0 orders") {
		t.Errorf("calls failed with a gRPC status: %v", err)
	}
}

// TestParseH2load reads h2load's summary and per-request log.
func TestParseH2load(t *testing.T) {
	t.Parallel()
	summary := `finished in 523.41ms, 1910.55 req/s, 301.38KB/s
requests: 1000 total, 1000 started, 1000 done, 998 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 997 2xx, 0 3xx, 3 4xx, 0 5xx
traffic: 157.73KB (161518) total, 4.05KB (4146) headers (space savings 95.72%), 118.16KB (121000) data
`
	log := "1796164652558237\t200\t1727\n1796164652558240\t403\t1777\n1796164652558241\t200\t90\n"
	r, err := parseH2load([]byte(summary), strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if r.done != 1000 || r.succeeded != 998 || r.failed != 2 || r.status2xx != 997 || r.statusOther != 4 ||
		r.elapsed != 523410*time.Microsecond || len(r.latencies) != 2 || r.latencies[1] != 90*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	if err := r.check(1000, 1000); err == nil {
		t.Error("a run with failed calls passes its check")
	}
	if _, err := parseH2load([]byte("connect: Connection refused\n"), strings.NewReader("")); err == nil {
		t.Error("no summary: no error")
	}
}
