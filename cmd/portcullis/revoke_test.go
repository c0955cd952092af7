package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/freeport"
	"github.com/portcullis/portcullis/internal/redistest"
)

// buildBinary builds the portcullis binary into a directory removed when
// the test ends.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portcullis")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process runs the binary bin with args until the test ends, then
// interrupts it; its stdout goes to lines, if not nil.
func process(t *testing.T, bin string, lines chan<- string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if lines != nil {
				lines <- s.Text()
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// gatewayProcess writes a configuration and starts a gateway process with
// it, and returns its URL once /readyz says it is ready.
func gatewayProcess(t *testing.T, bin, dir, issuerURL, backend, revocation string) string {
	t.Helper()
	listen, admin := freeport.Addr(t), freeport.Addr(t)
	cfg := filepath.Join(dir, "gateway-"+strings.ReplaceAll(listen, ":", "-")+".yaml")
	yaml := fmt.Sprintf(`listen: %q
admin: %q
issuers: [{issuer: %q, audiences: [portcullis], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: "http://%s"}]
telemetry: {log_level: error, access_log: false}
`, listen, admin, issuerURL, backend) + revocation
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	process(t, bin, nil, "gateway", "--config", cfg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return "http://" + listen
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s not ready after 30s", listen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call calls ListRequirements through the gateway at u with tok.
func call(u, tok string) error {
	client := licensingv1connect.NewLicensingServiceClient(http.DefaultClient, u)
	req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
	req.Header().Set("Authorization", "Bearer "+tok)
	_, err := client.ListRequirements(context.Background(), req)
	return err
}

// revoked reports whether err is the refusal of a revoked token.
func revoked(err error) bool {
	return connect.CodeOf(err) == connect.CodeUnauthenticated && strings.HasSuffix(err.Error(), "token revoked")
}

// The portcullis binary as five processes: an issuer, a backend and three
// gateways. A token works on the three; after "portcullis clients revoke"
// (a sixth process), and after an RFC 7009 revocation, the three refuse it
// within a second, from their caches too; a gateway started afterwards
// refuses it at its first call. Through Redis and through the feed.
func TestRevocationAcrossGatewayProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	for _, via := range []string{"redis", "feed"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			registry := filepath.Join(dir, "clients.yaml")
			issuerArgs := []string{"issuer", "serve", "--listen", "127.0.0.1:0", "--registry", registry, "--keys", filepath.Join(dir, "keys"), "--log-level", "error"}
			section := ""
			if via == "redis" {
				_, prefix := redistest.Shared(t)
				issuerArgs = append(issuerArgs, "--redis", redistest.SharedAddr, "--redis-prefix", prefix)
				section = fmt.Sprintf("revocation: {source: redis, redis: {prefix: %q}}\n", prefix)
			}
			secrets := map[string]string{}
			for _, id := range []string{"reader", "writer"} {
				code, stdout, stderr := runCLI(t, "clients", "add", id, "--grant", "LIC.READ_REQUIREMENTS", "--registry", registry)
				if code != 0 {
					t.Fatalf("clients add: %s", stderr)
				}
				secrets[id] = secretOf(t, stdout, id)
			}
			lines := make(chan string, 16)
			process(t, bin, lines, issuerArgs...)
			issuerURL := strings.TrimPrefix(<-lines, "Token issuer ")
			backend := freeport.Addr(t)
			process(t, bin, nil, "backend", "--service", "licensing", "--listen", backend)
			var gateways []string
			for range 3 {
				gateways = append(gateways, gatewayProcess(t, bin, dir, issuerURL, backend, section))
			}
			token := func(id string) string {
				cfg := clientcredentials.Config{ClientID: id, ClientSecret: secrets[id], TokenURL: issuerURL + "/oauth2/token"}
				tok, err := cfg.Token(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return tok.AccessToken
			}
			works := func(tok string) {
				for _, g := range gateways {
					for range 2 {
						if err := call(g, tok); err != nil {
							t.Fatalf("%s: %v", g, err)
						}
					}
				}
			}
			refusedWithinASecond := func(tok string, start time.Time) time.Duration {
				for _, g := range gateways {
					for {
						err := call(g, tok)
						if revoked(err) {
							break
						}
						if err != nil {
							t.Fatalf("%s: %v, want the token revoked", g, err)
						}
						if time.Since(start) > time.Second {
							t.Fatalf("%s still accepts the token a second after its revocation", g)
						}
						time.Sleep(time.Millisecond)
					}
				}
				return time.Since(start)
			}

			readers := token("reader")
			works(readers)
			start := time.Now()
			if out, err := exec.Command(bin, "clients", "revoke", "reader", "--registry", registry).CombinedOutput(); err != nil {
				t.Fatalf("clients revoke: %v\n%s", err, out)
			}
			t.Logf("%s: three gateway processes refuse the token %v after clients revoke", via, refusedWithinASecond(readers, start))

			writers := token("writer")
			works(writers)
			start = time.Now()
			req, _ := http.NewRequest("POST", issuerURL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {writers}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("writer", secrets["writer"])
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("RFC 7009: %v %v", res, err)
			}
			res.Body.Close()
			t.Logf("%s: three gateway processes refuse the token %v after an RFC 7009 revocation", via, refusedWithinASecond(writers, start))

			late := gatewayProcess(t, bin, dir, issuerURL, backend, section)
			for _, tok := range []string{readers, writers} {
				if err := call(late, tok); !revoked(err) {
					t.Fatalf("a gateway started after the revocations: %v, want the token revoked", err)
				}
			}
		})
	}
}
