package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/jwttest"
)

// TestIssuerServeExchange turns token exchange on with --exchange and a
// client added with --exchange, and exchanges a token of an external IdP.
func TestIssuerServeExchange(t *testing.T) {
	t.Parallel()
	signer := jwttest.NewEC("ext")
	idp := jwttest.NewIdP(t, signer)
	dir := t.TempDir()
	registry, keys, xfile := filepath.Join(dir, "clients.yaml"), filepath.Join(dir, "keys"), filepath.Join(dir, "exchange.yaml")
	code, stdout, stderr := runCLI(t, "clients", "add", "broker", "--grant", "ORD.READ", "--exchange", "--registry", registry)
	if code != 0 {
		t.Fatalf("clients add = %d: %s", code, stderr)
	}
	secret := secretOf(t, stdout, "broker")
	if data, _ := os.ReadFile(registry); !strings.Contains(string(data), "exchange: true") {
		t.Errorf("registry without exchange: true:\n%s", data)
	}
	x := fmt.Sprintf("issuers:\n- issuer: %s\n  audiences: [portcullis]\n  discovery: true\n  type: any\n  claims:\n  - {claim: groups, value: readers, grants: [LIC.READ_REQUIREMENTS]}\n", idp.URL)
	if err := os.WriteFile(xfile, []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"issuer", "serve", "--listen", "127.0.0.1:0", "--keys", keys, "--registry", registry, "--exchange", xfile, "--log-level", "error"}, outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "Token issuer http://127.0.0.1:") {
		t.Fatalf("issuer serve printed %q", lines.Text())
	}
	issuerURL := strings.TrimPrefix(lines.Text(), "Token issuer ")
	go io.Copy(io.Discard, out)

	now := time.Now()
	subject := signer.Mint(nil, map[string]any{"iss": idp.URL, "sub": "alice", "aud": "portcullis", "exp": now.Add(time.Hour).Unix(), "groups": []string{"readers"}})
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject}, "subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}}
	req, _ := http.NewRequest(http.MethodPost, issuerURL+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("broker", secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || body["scope"] != "LIC.READ_REQUIREMENTS" || body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" {
		t.Errorf("exchange = %d %v", res.StatusCode, body)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("issuer serve exited %d", code)
	}
}

func TestIssuerServeExchangeFileInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	xfile := filepath.Join(dir, "exchange.yaml")
	if err := os.WriteFile(xfile, []byte("issuers:\n- issuer: https://idp.example\n  audiences: [portcullis]\n  discovery: true\n  subject: {a: b}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "issuer", "serve", "--listen", "127.0.0.1:0", "--keys", filepath.Join(dir, "keys"), "--registry", filepath.Join(dir, "r.yaml"), "--exchange", xfile)
	if code == 0 || !strings.Contains(stderr, "exchange.yaml") || !strings.Contains(stderr, `unknown field "subject"`) {
		t.Errorf("issuer serve = %d, %q", code, stderr)
	}
}
