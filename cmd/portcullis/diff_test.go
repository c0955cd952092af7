package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/buftest"
	"github.com/portcullis/portcullis/internal/prototest"
)

const (
	licensingPath = "example/licensing/v1/licensing.proto"
	ordersPath    = "example/orders/v1/orders.proto"
)

// exampleImage writes an image of the example protos with edits (old, new,
// old, new...) made to licensing.proto.
func exampleImage(t *testing.T, edits ...string) string {
	t.Helper()
	sources := map[string]string{}
	for _, path := range []string{licensingPath, ordersPath} {
		text, err := os.ReadFile(filepath.Join(prototest.ProtoDir, filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		sources[path] = string(text)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(sources[licensingPath], edits[i]) {
			t.Fatalf("licensing.proto has no %q", edits[i])
		}
		sources[licensingPath] = strings.Replace(sources[licensingPath], edits[i], edits[i+1], 1)
	}
	return prototest.WriteImage(t, sources)
}

// Edits of licensing.proto: ListRequirements (line 63) becomes public,
// GetLicenceOrder (line 76) also requires LIC.WRITE_ORDERS, WRITE_ORDERS
// gets another mask.
var (
	loosen  = []string{`requires: ["LIC.READ_REQUIREMENTS"]`, `public: true`}
	tighten = []string{"response_body: \"order\"\n    };\n    option (gateway.v1.access) = {\n      requires: [\"LIC.READ_ORDERS\"]",
		"response_body: \"order\"\n    };\n    option (gateway.v1.access) = {\n      requires: [\"LIC.READ_ORDERS\", \"LIC.WRITE_ORDERS\"]"}
	remask = []string{"mask: 4\n", "mask: 8\n"}
)

const (
	loosenedLine  = "example/licensing/v1/licensing.proto:63:3: loosened: method-public: /example.licensing.v1.LicensingService/ListRequirements: method is now public: it required LIC.READ_REQUIREMENTS\n"
	tightenedLine = "example/licensing/v1/licensing.proto:76:3: tightened: requirement-added: /example.licensing.v1.LicensingService/GetLicenceOrder: method now also requires LIC.WRITE_ORDERS\n"
)

func TestDiffFormats(t *testing.T) {
	t.Parallel()
	before := exampleImage(t)
	after := exampleImage(t, append(loosen, tighten...)...)

	code, stdout, stderr := runCLI(t, "diff", before, after)
	if want := loosenedLine + tightenedLine + "2 change(s): 1 loosened, 1 tightened\n"; code != 1 || stdout != want {
		t.Errorf("diff = %d\n%s%s\nwant 1 and\n%s", code, stdout, stderr, want)
	}

	code, stdout, _ = runCLI(t, "diff", "--format", "markdown", before, after)
	const markdown = "### Access changes\n\n**1 loosened**, 1 tightened.\n\n" +
		"| Change | Rule | Element | What | Where |\n|---|---|---|---|---|\n" +
		"| **loosened** | `method-public` | `/example.licensing.v1.LicensingService/ListRequirements` | method is now public: it required LIC.READ_REQUIREMENTS | `example/licensing/v1/licensing.proto:63:3` |\n" +
		"| tightened | `requirement-added` | `/example.licensing.v1.LicensingService/GetLicenceOrder` | method now also requires LIC.WRITE_ORDERS | `example/licensing/v1/licensing.proto:76:3` |\n"
	if code != 1 || stdout != markdown {
		t.Errorf("diff --format markdown = %d\n%s\nwant\n%s", code, stdout, markdown)
	}

	code, stdout, _ = runCLI(t, "diff", "--format", "json", before, after)
	var report struct {
		Summary map[string]int `json:"summary"`
		Changes []struct {
			Kind, Rule, Element, Message, File string
			Line, Column                       int
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); code != 1 || err != nil {
		t.Fatalf("diff --format json = %d %v\n%s", code, err, stdout)
	}
	if s := report.Summary; len(s) != 5 || s["loosened"] != 1 || s["tightened"] != 1 || s["breaking"]+s["added"]+s["removed"] != 0 {
		t.Errorf("summary = %v", s)
	}
	if len(report.Changes) != 2 {
		t.Fatalf("changes = %+v", report.Changes)
	}
	if c := report.Changes[0]; c.Kind != "loosened" || c.Rule != "method-public" || c.Element != "/example.licensing.v1.LicensingService/ListRequirements" ||
		c.File != licensingPath || c.Line != 63 || c.Column != 3 || c.Message != "method is now public: it required LIC.READ_REQUIREMENTS" {
		t.Errorf("first change = %+v", c)
	}
	if c := report.Changes[1]; c.Kind != "tightened" || c.Rule != "requirement-added" || c.Line != 76 {
		t.Errorf("second change = %+v", c)
	}
}

func TestDiffExitCodes(t *testing.T) {
	t.Parallel()
	before := exampleImage(t)
	for _, tc := range []struct {
		name   string
		edits  []string
		code   int
		stdout string
	}{
		{"nothing changed", nil, 0, "no access changes\n"},
		{"loosened", loosen, 1, loosenedLine + "1 change(s): 1 loosened\n"},
		{"tightened", tighten, 0, tightenedLine + "1 change(s): 1 tightened\n"},
		{"breaking", remask, 0, "example/licensing/v1/licensing.proto:34:3: breaking: mask-changed: LIC.WRITE_ORDERS: " +
			"mask of LIC.WRITE_ORDERS is now 8, was 4: tokens issued with 4 no longer grant it\n1 change(s): 1 breaking\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, "diff", before, exampleImage(t, tc.edits...))
			if code != tc.code || stdout != tc.stdout || stderr != "" {
				t.Errorf("diff = %d\n%s%s\nwant %d and\n%s", code, stdout, stderr, tc.code, tc.stdout)
			}
		})
	}
	t.Run("nothing changed, markdown and json", func(t *testing.T) {
		t.Parallel()
		if code, stdout, _ := runCLI(t, "diff", "--format", "markdown", before, before); code != 0 || stdout != "### Access changes\n\nNo access changes.\n" {
			t.Errorf("markdown = %d %q", code, stdout)
		}
		code, stdout, _ := runCLI(t, "diff", "--format", "json", before, before)
		if want := `{"summary":{"loosened":0,"breaking":0,"tightened":0,"added":0,"removed":0},"changes":[]}`; code != 0 || strings.Join(strings.Fields(stdout), "") != want {
			t.Errorf("json = %d %s", code, stdout)
		}
	})
}

func TestDiffErrors(t *testing.T) {
	t.Parallel()
	good := exampleImage(t)
	invalid := exampleImage(t, "mask: 4\n", "mask: 3\n")
	garbage := filepath.Join(t.TempDir(), "garbage.binpb")
	if err := os.WriteFile(garbage, []byte("\xff\xff not an image"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // a substring
	}{
		{"one argument", []string{good}, 2, "want OLD and NEW, got 1 argument(s)"},
		{"three arguments", []string{good, good, good}, 2, "want OLD and NEW, got 3 argument(s)"},
		{"unknown format", []string{"--format", "yaml", good, good}, 2, `unknown format "yaml"`},
		{"empty buf", []string{"--buf", " ", good, good}, 2, "--buf is empty"},
		{"not a source", []string{good, "no-such-ref-or-file"}, 2, `NEW "no-such-ref-or-file": not a buf image, a directory or a git commit`},
		{"an option for a ref", []string{"--", "--output=x", good}, 2, `OLD "--output=x": not a buf image, a directory or a git commit`},
		{"not an image", []string{garbage, good}, 1, "OLD catalog: decode image"},
		{"invalid new catalog", []string{good, invalid}, 1, "mask-power-of-two: mask 3 of LIC.WRITE_ORDERS is not a power of two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, append([]string{"diff"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("diff %v = %d %q %q; want %d and %q", tc.args, code, stdout, stderr, tc.code, tc.stderr)
			}
		})
	}

	t.Run("invalid old catalog", func(t *testing.T) {
		t.Parallel()
		// The services a problem touches are left out of OLD: its methods
		// count as added.
		code, stdout, stderr := runCLI(t, "diff", invalid, good)
		if code != 0 || !strings.Contains(stderr, "OLD "+invalid+" has 3 problem(s); the services they touch are left out:\n  example/licensing/v1/licensing.proto:34:3: ") ||
			!strings.Contains(stdout, "added: method-added: /example.licensing.v1.LicensingService/ListRequirements: new method, requires LIC.READ_REQUIREMENTS\n") {
			t.Errorf("diff = %d\n%s%s", code, stdout, stderr)
		}
	})
}

// TestDiffGitAndDirectory builds a commit of a git repository and its
// working tree with buf, from a buf.yaml in a subdirectory of the
// repository.
func TestDiffGitAndDirectory(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	options, err := os.ReadFile(filepath.Join(prototest.ProtoDir, "gateway", "v1", "options.proto"))
	if err != nil {
		t.Fatal(err)
	}
	const acme = `syntax = "proto3";
package acme.v1;
import "gateway/v1/options.proto";
enum AcmePermission {
  option (gateway.v1.domain) = {name: "ACME"};
  ACME_PERMISSION_UNSPECIFIED = 0;
  ACME_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
}
message M {}
service AcmeService {
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["ACME.READ"]}; }
}
`
	buftest.Write(t, repo, map[string]string{
		"api/buf.yaml":                       "version: v2\nmodules:\n  - path: proto\n",
		"api/proto/gateway/v1/options.proto": string(options),
		"api/proto/acme/v1/acme.proto":       acme,
		"README":                             "not a proto\n",
	})
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "acme"}} {
		if code, stdout, stderr := buftest.Exec(t, env, append([]string{"git", "-C", repo}, args...)...); code != 0 {
			t.Fatalf("git %v = %d %s%s", args, code, stdout, stderr)
		}
	}
	buftest.Write(t, repo, map[string]string{
		"api/proto/acme/v1/acme.proto": strings.Replace(acme, `{requires: ["ACME.READ"]}`, `{public: true}`, 1),
	})

	bufCmd := strings.Join(buftest.Command(), " ")
	code, stdout, stderr := runCLI(t, "diff", "--buf", bufCmd, "main", filepath.Join(repo, "api"))
	const want = "acme/v1/acme.proto:11:3: loosened: method-public: /acme.v1.AcmeService/Get: method is now public: it required ACME.READ\n" +
		"1 change(s): 1 loosened\n"
	if code != 1 || stdout != want {
		t.Errorf("diff main api = %d\n%s%s\nwant 1 and\n%s", code, stdout, stderr, want)
	}
	if code, stdout, stderr := runCLI(t, "diff", "--buf", bufCmd, filepath.Join(repo, "api"), "main"); code != 0 ||
		!strings.HasPrefix(stdout, "acme/v1/acme.proto:11:3: tightened: method-protected: /acme.v1.AcmeService/Get: public method now requires ACME.READ\n") {
		t.Errorf("diff api main = %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "diff", "--buf", bufCmd, "nope", filepath.Join(repo, "api")); code != 2 ||
		!strings.Contains(stderr, `OLD "nope": not a buf image, a directory or a git commit`) {
		t.Errorf("diff nope api = %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "diff", "--buf", "no-such-buf-command", "main", filepath.Join(repo, "api")); code != 1 ||
		!strings.Contains(stderr, "no-such-buf-command build") {
		t.Errorf("diff with a missing buf = %d %s", code, stderr)
	}
}
