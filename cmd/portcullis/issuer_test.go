package main

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"golang.org/x/oauth2/clientcredentials"
)

func TestIssuerServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	registry, keys := filepath.Join(dir, "clients.yaml"), filepath.Join(dir, "keys")
	code, stdout, stderr := runCLI(t, "clients", "add", "reader", "--grant", "ORD.READ", "--registry", registry)
	if code != 0 {
		t.Fatalf("clients add = %d: %s", code, stderr)
	}
	secret := secretOf(t, stdout, "reader")

	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"issuer", "serve", "--listen", "127.0.0.1:0", "--keys", keys, "--registry", registry, "--log-level", "error"}, outW, io.Discard)
		outW.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "Token issuer http://127.0.0.1:") {
		t.Fatalf("issuer serve printed %q", lines.Text())
	}
	issuerURL := strings.TrimPrefix(lines.Text(), "Token issuer ")
	go io.Copy(io.Discard, out)

	token := func() (string, string) {
		t.Helper()
		cfg := clientcredentials.Config{ClientID: "reader", ClientSecret: secret, TokenURL: issuerURL + "/oauth2/token"}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		set, err := jwk.Fetch(ctx, issuerURL+"/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse([]byte(tok.AccessToken), jwt.WithKeySet(set), jwt.WithIssuer(issuerURL), jwt.WithAudience("portcullis")); err != nil {
			t.Fatalf("verify: %v", err)
		}
		msg, _ := jws.Parse([]byte(tok.AccessToken))
		return tok.AccessToken, msg.Signatures()[0].ProtectedHeaders().KeyID()
	}
	_, first := token()

	// A rotation reaches the running issuer without a restart.
	code, stdout, stderr = runCLI(t, "issuer", "rotate-key", "--keys", keys, "--alg", "EdDSA")
	if code != 0 || !strings.HasPrefix(stdout, "new EdDSA key ") {
		t.Fatalf("issuer rotate-key = %d, %q, %q", code, stdout, stderr)
	}
	next := strings.Fields(stdout)[3]
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, kid := token(); kid == next {
			break
		} else if kid != first || time.Now().After(deadline) {
			t.Fatalf("signed by %s, want %s then %s", kid, first, next)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("issuer serve exited %d after the interrupt", code)
	}
}

func TestIssuerKeys(t *testing.T) {
	t.Parallel()
	keys := filepath.Join(t.TempDir(), "keys")
	code, stdout, stderr := runCLI(t, "issuer", "rotate-key", "--keys", keys)
	if code != 0 || !strings.HasPrefix(stdout, "new ES256 key ") {
		t.Fatalf("rotate-key = %d, %q, %q", code, stdout, stderr)
	}
	kid := strings.Fields(stdout)[3]
	code, stdout, _ = runCLI(t, "issuer", "rotate-key", "--keys", keys, "--activate-in", "1h", "--alg", "RS256")
	if code != 0 {
		t.Fatalf("rotate-key = %d", code)
	}
	next := strings.Fields(stdout)[3]
	code, stdout, _ = runCLI(t, "issuer", "keys", "--keys", keys)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "KID") ||
		!strings.HasPrefix(lines[1], kid) || strings.Fields(lines[1])[2] != "active" ||
		!strings.HasPrefix(lines[2], next) || strings.Fields(lines[2])[1] != "RS256" || strings.Fields(lines[2])[2] != "pending" {
		t.Errorf("issuer keys = %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "issuer", "rotate-key", "--keys", keys); code != 1 || !strings.Contains(stderr, "already waits to activate") {
		t.Errorf("rotate-key while one waits = %d, %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "issuer", "rotate-key", "--keys", keys, "--alg", "HS256"); code != 1 || !strings.Contains(stderr, `"HS256" is not supported`) {
		t.Errorf("rotate-key HS256 = %d, %q", code, stderr)
	}
}

func TestIssuerUsage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"issuer"}, 2, "Usage:"},
		{[]string{"issuer", "start"}, 2, `unknown subcommand "start"`},
		{[]string{"issuer", "serve", "--tls-cert", "c.pem"}, 2, "--tls-cert and --tls-key go together"},
		{[]string{"issuer", "serve", "--listen", "127.0.0.1:0", "--url", "ftp://x", "--keys", filepath.Join(t.TempDir(), "k")}, 1, "http or https"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tt.args, code, stderr, tt.wantCode, tt.want)
		}
	}
	if code, stdout, _ := runCLI(t, "issuer", "help"); code != 0 || !strings.Contains(stdout, "rotate-key") {
		t.Errorf("issuer help = %d, %q", code, stdout)
	}
}
