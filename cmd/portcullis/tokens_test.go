package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/services/issuer"
)

func TestTokensRevoke(t *testing.T) {
	t.Parallel()
	registry := filepath.Join(t.TempDir(), "clients.yaml")
	if code, _, stderr := runCLI(t, "clients", "add", "billing", "--grant", "ORD.READ", "--registry", registry); code != 0 {
		t.Fatalf("clients add = %d: %s", code, stderr)
	}
	hourAgo := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		args                 []string
		code                 int
		stdout, stderr, file string
	}{
		{[]string{"--jti", "Zm9vYmFy"}, 0, "revoked token Zm9vYmFy\n", "", `{"jti":"Zm9vYmFy","exp":`},
		{[]string{"--client", "billing", "--before", hourAgo.Format(time.RFC3339)}, 0, "revoked the tokens of billing issued before " + hourAgo.Format(time.RFC3339) + "\n",
			`Client "billing" stays registered`, `{"client_id":"billing","before":` + strconv.FormatInt(hourAgo.Unix(), 10) + `,"exp":`},
		{[]string{"--client", "gone"}, 0, "revoked the tokens of gone issued before ", `Client "gone" is not in`, `{"client_id":"gone","before":`},
		{nil, 2, "", "give --jti or --client, one of them", ""},
		{[]string{"--jti", "a", "--client", "b"}, 2, "", "give --jti or --client, one of them", ""},
		{[]string{"--jti", "a", "--before", "2026-03-01T12:00:00Z"}, 2, "", "--before goes with --client", ""},
		{[]string{"--client", "b", "--before", "yesterday"}, 2, "", `--before "yesterday" is not an RFC 3339 time`, ""},
		{[]string{"--client", "b", "--before", "2999-01-01T00:00:00Z"}, 1, "", "is in the future", ""},
	}
	for _, tt := range tests {
		args := append([]string{"tokens", "revoke", "--registry", registry}, tt.args...)
		code, stdout, stderr := runCLI(t, args...)
		if code != tt.code || !strings.HasPrefix(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%v: exit %d, %q, %q; want %d, %q, %q", tt.args, code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
		}
		data, _ := os.ReadFile(issuer.RevocationsPath(registry))
		if tt.file != "" && !strings.Contains(string(data), tt.file) {
			t.Errorf("%v: the revocation file holds\n%s\nwant a line with %s", tt.args, data, tt.file)
		}
	}
	if lines := strings.Count(mustRead(t, issuer.RevocationsPath(registry)), "\n"); lines != 3 {
		t.Errorf("%d revocations recorded, want 3: refused commands record none", lines)
	}
	for _, args := range [][]string{{"tokens"}, {"tokens", "rename"}} {
		if code, _, stderr := runCLI(t, args...); code != 2 || !strings.Contains(stderr, "Usage:") {
			t.Errorf("%v = %d, %q", args, code, stderr)
		}
	}
	if code, stdout, _ := runCLI(t, "tokens", "help"); code != 0 || !strings.Contains(stdout, "portcullis tokens revoke --jti JTI") {
		t.Errorf("tokens help = %d, %q", code, stdout)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
