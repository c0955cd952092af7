package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"buf.build/go/bufplugin/check"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/internal/buftest"
)

// binDir holds the commands the tests build: the plugin, which buf finds on
// the PATH, and portcullis.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "buf-plugin-portcullis-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildPlugin     = sync.OnceValues(func() (string, error) { return buftest.Build(binDir, "buf-plugin-portcullis") })
	buildPortcullis = sync.OnceValues(func() (string, error) { return buftest.Build(binDir, "portcullis") })
)

// buf runs buf with the plugin on its PATH.
func buf(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if _, err := buildPlugin(); err != nil {
		t.Fatal(err)
	}
	return buftest.Run(t, binDir, args...)
}

// portcullis runs the portcullis command.
func portcullis(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	path, err := buildPortcullis()
	if err != nil {
		t.Fatal(err)
	}
	return buftest.Exec(t, nil, append([]string{path}, args...)...)
}

// bufYAML configures a module that uses the plugin: lint and breaking are
// the bodies of those sections.
func bufYAML(lint, breaking string) string {
	return "version: v2\nlint:\n" + lint + "breaking:\n" + breaking + "plugins:\n  - plugin: buf-plugin-portcullis\n"
}

// usePortcullis uses the plugin's default category.
const usePortcullis = "  use: [PORTCULLIS]\n"

// defaultYAML uses the plugin's default rules for lint and breaking.
var defaultYAML = bufYAML(usePortcullis, usePortcullis)

// acme is a file whose line 12 declares Get with the given access, and
// line 13 Put, which requires ACME.WRITE.
func acme(get string) string {
	return `syntax = "proto3";
package acme.v1;
import "gateway/v1/options.proto";
enum AcmePermission {
  option (gateway.v1.domain) = {name: "ACME"};
  ACME_PERMISSION_UNSPECIFIED = 0;
  ACME_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  ACME_PERMISSION_WRITE = 2 [(gateway.v1.permission) = {mask: 2}];
}
message M {}
service AcmeService {
  rpc Get(M) returns (M)` + get + `
  rpc Put(M) returns (M) { option (gateway.v1.access) = {requires: ["ACME.WRITE"]}; }
}
`
}

const (
	undeclared = ";"
	protected  = ` { option (gateway.v1.access) = {requires: ["ACME.READ"]}; }`
	public     = ` { option (gateway.v1.access) = {public: true}; }`
	acmePath   = "acme/v1/acme.proto"
)

// annotation is one line of `buf lint` or `buf breaking` with
// --error-format=json.
type annotation struct {
	Path    string `json:"path"`
	Line    int    `json:"start_line"`
	Column  int    `json:"start_column"`
	Type    string `json:"type"`
	Message string `json:"message"`
	Plugin  string `json:"plugin"`
}

func (a annotation) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", a.Path, a.Line, a.Column, a.Type, a.Message)
}

// annotations parses buf's JSON output, with paths relative to module dir,
// sorted.
func annotations(t *testing.T, dir, stdout string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(stdout) {
		var a annotation
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("buf output %q: %v", line, err)
		}
		if a.Plugin != "buf-plugin-portcullis" {
			t.Errorf("annotation %s comes from %q", a, a.Plugin)
		}
		a.Path = strings.TrimPrefix(a.Path, dir+string(filepath.Separator))
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

// relative strips the module directory from buf's text output.
func relative(dir, output string) string {
	return strings.ReplaceAll(output, dir+string(filepath.Separator), "")
}

func TestPluginLint(t *testing.T) {
	t.Parallel()
	dir := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, acmePath: acme(undeclared)})

	code, stdout, stderr := buf(t, "lint", dir)
	const want = "acme/v1/acme.proto:12:3:acme.v1.AcmeService.Get: method declares no (gateway.v1.access) and service AcmeService " +
		"no (gateway.v1.default_access): it would be refused to everyone (buf-plugin-portcullis)\n"
	if code != 100 || relative(dir, stdout) != want {
		t.Errorf("buf lint = %d\n%s%s\nwant 100 and\n%s", code, relative(dir, stdout), stderr, want)
	}
	code, stdout, stderr = buf(t, "lint", "--error-format=json", dir)
	if got := annotations(t, dir, stdout); code != 100 || !slices.Equal(got, []string{
		"acme/v1/acme.proto:12:3: PORTCULLIS_NO_ACCESS: acme.v1.AcmeService.Get: method declares no (gateway.v1.access) and service AcmeService " +
			"no (gateway.v1.default_access): it would be refused to everyone",
	}) {
		t.Errorf("buf lint --error-format=json = %d %q %s", code, got, stderr)
	}

	t.Run("except", func(t *testing.T) {
		t.Parallel()
		dir := buftest.Module(t, map[string]string{"buf.yaml": bufYAML(usePortcullis+"  except: [PORTCULLIS_NO_ACCESS]\n", usePortcullis), acmePath: acme(undeclared)})
		if code, stdout, stderr := buf(t, "lint", dir); code != 0 || stdout != "" {
			t.Errorf("buf lint excepting PORTCULLIS_NO_ACCESS = %d %s%s", code, stdout, stderr)
		}
	})
	t.Run("comment ignore", func(t *testing.T) {
		t.Parallel()
		source := strings.Replace(acme(undeclared), "  rpc Get", "  // buf:lint:ignore PORTCULLIS_NO_ACCESS\n  rpc Get", 1)
		dir := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, acmePath: source})
		if code, stdout, stderr := buf(t, "lint", dir); code != 0 || stdout != "" {
			t.Errorf("buf lint with an ignore comment = %d %s%s", code, stdout, stderr)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		t.Parallel()
		buftest.Write(t, dir, map[string]string{acmePath: acme(protected)})
		if code, stdout, stderr := buf(t, "lint", dir); code != 0 || stdout != "" {
			t.Errorf("buf lint after the fix = %d %s%s", code, stdout, stderr)
		}
	})
}

func TestPluginBreaking(t *testing.T) {
	t.Parallel()
	before := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, acmePath: acme(protected)})
	image := build(t, before)

	for name, against := range map[string]string{"against an image": image, "against a directory": before} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, acmePath: acme(public)})
			code, stdout, stderr := buf(t, "breaking", dir, "--against", against)
			const want = "acme/v1/acme.proto:12:3:/acme.v1.AcmeService/Get: method is now public: it required ACME.READ (buf-plugin-portcullis)\n"
			if code != 100 || relative(dir, stdout) != want {
				t.Errorf("buf breaking = %d\n%s%s\nwant 100 and\n%s", code, relative(dir, stdout), stderr, want)
			}
			code, stdout, _ = buf(t, "breaking", "--error-format=json", dir, "--against", against)
			if got := annotations(t, dir, stdout); code != 100 || len(got) != 1 || !strings.HasPrefix(got[0], "acme/v1/acme.proto:12:3: PORTCULLIS_METHOD_PUBLIC: ") {
				t.Errorf("buf breaking --error-format=json = %d %q", code, got)
			}

			buftest.Write(t, dir, map[string]string{acmePath: acme(protected)}) // the fix
			if code, stdout, stderr := buf(t, "breaking", dir, "--against", against); code != 0 || stdout != "" {
				t.Errorf("buf breaking after the fix = %d %s%s", code, stdout, stderr)
			}
			if code, stdout, stderr := buf(t, "lint", dir); code != 0 || stdout != "" {
				t.Errorf("buf lint after the fix = %d %s%s", code, stdout, stderr)
			}
		})
	}

	t.Run("tightened", func(t *testing.T) {
		t.Parallel()
		tighter := strings.Replace(acme(protected), `{requires: ["ACME.WRITE"]}`, `{requires: ["ACME.WRITE", "ACME.READ"]}`, 1)
		dir := buftest.Module(t, map[string]string{"buf.yaml": defaultYAML, acmePath: tighter})
		if code, stdout, stderr := buf(t, "breaking", dir, "--against", image); code != 0 || stdout != "" {
			t.Errorf("buf breaking with a tightened method, by default = %d %s%s", code, stdout, stderr)
		}
		buftest.Write(t, dir, map[string]string{"buf.yaml": bufYAML(usePortcullis, "  use: [PORTCULLIS, PORTCULLIS_TIGHTENED]\n")})
		code, stdout, stderr := buf(t, "breaking", dir, "--against", image)
		const want = "acme/v1/acme.proto:13:3:/acme.v1.AcmeService/Put: method now also requires ACME.READ (buf-plugin-portcullis)\n"
		if code != 100 || relative(dir, stdout) != want {
			t.Errorf("buf breaking with PORTCULLIS_TIGHTENED = %d\n%s%s\nwant 100 and\n%s", code, relative(dir, stdout), stderr, want)
		}
	})
}

func TestSpec(t *testing.T) {
	t.Parallel()
	spec := newSpec()
	if err := check.ValidateSpec(spec); err != nil {
		t.Fatal(err)
	}
	ids := map[string]*check.RuleSpec{}
	for _, r := range spec.Rules {
		ids[r.ID] = r
	}
	for _, r := range catalog.Rules() {
		if s := ids[ruleID(r)]; s == nil || s.Type != check.RuleTypeLint || !s.Default || !slices.Equal(s.CategoryIDs, []string{"PORTCULLIS"}) {
			t.Errorf("validation rule %s: %+v", r, s)
		}
	}
	for _, r := range catalog.ChangeRules() {
		s := ids[ruleID(r)]
		switch r.Kind() {
		case catalog.Loosened, catalog.Breaking:
			if s == nil || s.Type != check.RuleTypeBreaking || !s.Default || !slices.Equal(s.CategoryIDs, []string{"PORTCULLIS"}) {
				t.Errorf("change rule %s: %+v", r, s)
			}
		case catalog.Tightened:
			if s == nil || s.Type != check.RuleTypeBreaking || s.Default || !slices.Equal(s.CategoryIDs, []string{"PORTCULLIS_TIGHTENED"}) {
				t.Errorf("change rule %s: %+v", r, s)
			}
		default:
			if s != nil {
				t.Errorf("change rule %s of kind %s is a plugin rule", r, r.Kind())
			}
		}
	}
	if got := ruleID(catalog.RuleNoAccess); got != "PORTCULLIS_NO_ACCESS" {
		t.Errorf("ruleID(no-access) = %q", got)
	}
}
