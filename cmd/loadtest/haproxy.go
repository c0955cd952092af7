package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The peer: HAProxy with the gateway's policy written as http-request
// rules, in front of the same backend. Each rule has its counterpart in the
// gateway:
//
//   - the method must be one the gateway knows (a map from path to masks),
//     else 404;
//   - a bearer token, its header (alg ES256, typ at+jwt) and its ES256
//     signature, checked with jwt_verify against the issuer's public key,
//     else 401;
//   - iss, aud and exp (exp after now), else 401;
//   - the AND check: for each namespace (ORD, LIC), the perms claim ANDed
//     with the method's mask must equal the mask, else 403;
//   - a per-client rate limit: a stick table keyed by the client_id claim
//     counting requests per second, refused with 429 over the same very
//     high limit as the gateway's bench tier;
//   - the identity headers for the backend, set from the claims after the
//     reserved ones sent by the caller are dropped.
//
// HAProxy verifies the signature on every call: it has no verified-token
// cache, so its reused-token and fresh-token runs cost the same.

// methodMasks are the (gateway.v1.access) masks of the methods the harness
// calls, in proto/example/orders/v1/orders.proto.
var methodMasks = []struct {
	path     string
	ord, lic int
}{
	{"/example.orders.v1.OrdersService/PlaceOrder", 2, 1}, // ORD.WRITE, LIC.READ_REQUIREMENTS
	{"/example.orders.v1.OrdersService/SyncOrders", 3, 2}, // ORD.READ|ORD.WRITE, LIC.READ_ORDERS
}

const haproxyConfig = `global
    nbthread 2
    maxconn 4000

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s

frontend portcullis_peer
    bind %[1]s proto h2
    # A method the policy knows, with its masks.
    http-request deny deny_status 404 unless { path,map_str(%[2]s) -m found }
    http-request set-var(txn.need_ord) path,map_str_int(%[2]s)
    http-request set-var(txn.need_lic) path,map_str_int(%[3]s)
    # The bearer token: header, signature, iss, aud, exp.
    http-request set-var(txn.bearer) http_auth_bearer
    http-request deny deny_status 401 unless { var(txn.bearer) -m found }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_header_query('$.alg') -m str ES256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_header_query('$.typ') -m str at+jwt }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify("ES256","%[4]s") -m int 1 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.iss') -m str loadtest }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.aud[0]') -m str portcullis } || { var(txn.bearer),jwt_payload_query('$.aud') -m str portcullis }
    http-request set-var(txn.now) date
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request deny deny_status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
    # The AND check of the method's masks.
    http-request set-var(txn.has_ord) int(0)
    http-request set-var(txn.has_lic) int(0)
    http-request set-var(txn.has_ord) var(txn.bearer),jwt_payload_query('$.perms.ORD','int')
    http-request set-var(txn.has_lic) var(txn.bearer),jwt_payload_query('$.perms.LIC','int')
    http-request deny deny_status 403 unless { var(txn.has_ord),and(txn.need_ord),sub(txn.need_ord) -m int 0 }
    http-request deny deny_status 403 unless { var(txn.has_lic),and(txn.need_lic),sub(txn.need_lic) -m int 0 }
    # The per-client rate limit.
    http-request set-var(txn.client) var(txn.bearer),jwt_payload_query('$.client_id')
    http-request deny deny_status 401 unless { var(txn.client) -m found }
    http-request track-sc0 var(txn.client) table per_client
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }
    # Who calls, for the backend.
    http-request del-header portcullis-client-id
    http-request del-header portcullis-tier
    http-request set-header portcullis-client-id %%[var(txn.client)]
    http-request set-header portcullis-tier %%[var(txn.bearer),jwt_payload_query('$.tier')]
    default_backend orders

backend per_client
    stick-table type string len 128 size 100k expire 60s store http_req_rate(1s)

backend orders
    server orders %[5]s proto h2
`

// writeHAProxyConfig writes haproxy.cfg, its two mask maps and the
// issuer's public key as PEM into dir, and returns the config's path.
func writeHAProxyConfig(dir, listen, backend string, pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	keyFile := filepath.Join(dir, "issuer.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	var ord, lic strings.Builder
	for _, m := range methodMasks {
		fmt.Fprintf(&ord, "%s %d\n", m.path, m.ord)
		fmt.Fprintf(&lic, "%s %d\n", m.path, m.lic)
	}
	ordFile, licFile := filepath.Join(dir, "ord.map"), filepath.Join(dir, "lic.map")
	if err := os.WriteFile(ordFile, []byte(ord.String()), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(licFile, []byte(lic.String()), 0o600); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(haproxyConfig, listen, ordFile, licFile, keyFile, strings.TrimPrefix(backend, "http://"))
	cfgFile := filepath.Join(dir, "haproxy.cfg")
	return cfgFile, os.WriteFile(cfgFile, []byte(cfg), 0o600)
}

// checkHAProxy fails early, with what to install, when haproxy is missing
// or rejects the configuration.
func checkHAProxy(ctx context.Context, cfgFile string) error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return fmt.Errorf("haproxy is not installed (make bench installs it: apt-get install haproxy): %w", err)
	}
	out, err := exec.CommandContext(ctx, "haproxy", "-c", "-q", "-f", cfgFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy -c: %v: %s", err, out)
	}
	return nil
}
