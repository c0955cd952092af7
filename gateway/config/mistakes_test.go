package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/gateway/config"
)

// parseMistakes parses yaml and returns its mistakes, failing the test if
// there are none.
func parseMistakes(t *testing.T, yaml string) []config.Mistake {
	t.Helper()
	_, err := config.Parse("bad.yaml", []byte(yaml), env(nil))
	var cfgErr *config.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("Parse = %v, want *config.Error", err)
	}
	return cfgErr.Mistakes
}

// TestParseReportsAllMistakesWithPlaces puts mistakes of every kind in one
// file and wants each of them, with its path, line and column, in the
// order of the file.
func TestParseReportsAllMistakesWithPlaces(t *testing.T) {
	t.Parallel()
	got := parseMistakes(t, `listen: 127.0.0.1:8080
route:
  - service: a.B
routes:
  - service: a.B
    backends: http://b:1
  - service: c.D
    backend: localhost:8082
    protocol: grpc
    protocol: connect
max_timeout: 30s
limits:
  max_timeout: 30
  max_message_bytes: big
rate_limit:
  default: {requests: 5, period: 1 minute}
  tiers: [pro]
issuers:
  - issuer: http://idp
    audiences: portcullis
    discovery: true
`)
	want := []config.Mistake{
		{Path: "route", Line: 2, Column: 1, Message: `unknown key; did you mean "routes"?`},
		{Path: "routes[0].backends", Line: 6, Column: 5, Message: `unknown key; did you mean "backend"?`},
		{Path: "routes[1].backend", Line: 8, Column: 14, Message: `"localhost:8082" is not an http:// (h2c) or https:// URL`},
		{Path: "routes[1].protocol", Line: 10, Column: 5, Message: `duplicate key; first set at line 9`},
		{Path: "max_timeout", Line: 11, Column: 1, Message: `unknown key here; it belongs in limits`},
		{Path: "limits.max_timeout", Line: 13, Column: 16, Message: `want a duration such as "30s", got the number 30: add a unit`},
		{Path: "limits.max_message_bytes", Line: 14, Column: 22, Message: `want a whole number, got "big"`},
		{Path: "rate_limit.default.period", Line: 16, Column: 34, Message: `want a duration such as "30s", got "1 minute"; did you mean "1m"?`},
		{Path: "rate_limit.tiers", Line: 17, Column: 10, Message: `want a map, got a list`},
		{Path: "issuers[0].audiences", Line: 20, Column: 16, Message: `want a list, such as [portcullis]`},
	}
	if !slices.Equal(got, want) {
		t.Errorf("mistakes:\n%s\nwant:\n%s", lines(got), lines(want))
	}
}

func lines(ms []config.Mistake) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %#v\n", m)
	}
	return b.String()
}

// base is a valid configuration for mistakes to be added to. It takes one
// line, so that the added text starts on line 2.
const base = "routes: [{service: a.B, backend: \"http://b:1\"}]\n"

// TestParseMistakeKinds adds one mistake at a time to a valid file.
func TestParseMistakeKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string // after base
		want string // "line:column: path: message"
	}{
		{"unknown top-level key", "listne: x\n", `2:1: listne: unknown key; did you mean "listen"?`},
		{"unknown key, no suggestion", "telemetry: {bogus: 1}\n", `2:13: telemetry.bogus: unknown key; want one of log_level, access_log, trace_sample_ratio, profiling`},
		{"duplicate top-level key", "admin: 127.0.0.1:1\nadmin: 127.0.0.1:2\n", `3:1: admin: duplicate key; first set at line 2`},
		{"duplicate map key", "rate_limit:\n  tiers:\n    pro: {multiplier: 2}\n    pro: {multiplier: 3}\n", `5:5: rate_limit.tiers.pro: duplicate key; first set at line 4`},
		{"number for duration", "limits: {idle_timeout: 5}\n", `2:24: limits.idle_timeout: want a duration such as "30s", got the number 5: add a unit`},
		{"spelt-out duration", "guard: {period: 10 seconds}\n", `2:17: guard.period: want a duration such as "30s", got "10 seconds"; did you mean "10s"?`},
		{"days", "tokens: {max_age: 2d}\n", `2:19: tokens.max_age: want a duration such as "30s", got "2d"; did you mean "48h"?`},
		{"not a duration", "health: {interval: soon}\n", `2:20: health.interval: want a duration such as "30s", got "soon"`},
		{"list for duration", "tokens: {skew: [1s]}\n", `2:16: tokens.skew: want a duration such as "30s", got a list`},
		{"string for number", "tokens: {max_size: \"8192\"}\n", `2:20: tokens.max_size: want a whole number, got "8192"`},
		{"fraction for whole number", "guard: {failures: 2.5}\n", `2:19: guard.failures: want a whole number, got 2.5`},
		{"negative unsigned", "limits: {max_concurrent_streams: -1}\n", `2:34: limits.max_concurrent_streams: must not be negative, got -1`},
		{"overflow", "limits: {max_concurrent_streams: 5000000000}\n", `2:34: limits.max_concurrent_streams: 5000000000 is out of range (at most 4294967295)`},
		{"string for float", "telemetry: {trace_sample_ratio: half}\n", `2:33: telemetry.trace_sample_ratio: want a number, got "half"`},
		{"string for bool", "reflection: yes\n", `2:13: reflection: want true or false, got "yes"`},
		{"list for map", "limits: [max_timeout]\n", `2:9: limits: want a map of settings, got a list`},
		{"map for list", "issuers: {issuer: x}\n", `2:10: issuers: want a list, got a map`},
		{"scalar for list", "descriptors: {images: image.binpb}\n", `2:23: descriptors.images: want a list, such as [image.binpb]`},
		{"map for string", "listen: {host: x}\n", `2:9: listen: want a string, got a map`},
		{"scalar for map", "rate_limit: {tiers: pro}\n", `2:21: rate_limit.tiers: want a map, got "pro"`},
		{"list key", "? [a, b]\n: 1\n", `2:3: want a key name, got a list`},
		{"second document", "---\nlisten: 127.0.0.1:1\n", `2:1: a second YAML document: the configuration is one document`},
		{"syntax error", "limits: max_timeout: 1s\n", `2: YAML: mapping values are not allowed in this context`},
		{"unknown anchor", "limits: *nope\n", `YAML: unknown anchor 'nope' referenced`},
		{"bad merge", "limits:\n  <<: 5\n", `3:7: limits.<<: want a map or a list of maps to merge, got 5`},
		{"validation mistake gets the value's place", "listen: \"nowhere\"\n", `2:9: listen: "nowhere" is not host:port`},
		{"missing key gets its section's place", "issuers:\n  - issuer: http://idp\n    discovery: true\n", `3:5: issuers[0].audiences: at least one audience is required`},
		{"unknown permission source", "issuers:\n  - {issuer: http://idp, audiences: [a], discovery: true, permissions: {from: roles}}\n", `3:79: issuers[0].permissions.from: "roles" is neither "perms" nor "scopes"`},
		{"scope mapping without from: scopes", "issuers:\n  - {issuer: http://idp, audiences: [a], discovery: true, permissions: {scopes: {\"o:r\": ORD.READ}}}\n", `3:81: issuers[0].permissions.scopes: maps scopes, but from is not "scopes"`},
		{"scope mapped to no permission", "issuers:\n  - {issuer: http://idp, audiences: [a], discovery: true, permissions: {from: scopes, scopes: {\"o:r\": orders.read}}}\n", `3:103: issuers[0].permissions.scopes.o:r: "orders.read" is not a permission such as LIC.READ_ORDERS`},
		{"new field validated with its place", "tokens:\n  retry_backoff: {min: 2s, max: 1s}\n", `3:33: tokens.retry_backoff.max: 1s is less than min (2s)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseMistakes(t, base+tt.yaml)
			if len(got) != 1 || got[0].String() != tt.want {
				t.Errorf("mistakes:\n%s\nwant one: %s", lines(got), tt.want)
			}
		})
	}
}

// TestParseSuggestsKeys checks the "did you mean" for keys misspelt,
// misplaced or both.
func TestParseSuggestsKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, path, message string
	}{
		{"one letter more", "routes:\n  - {service: a.B, backend: \"http://b:1\", backends: x}\n", "routes[0].backends", `unknown key; did you mean "backend"?`},
		{"swapped letters", "lisetn: x\n" + base, "lisetn", `unknown key; did you mean "listen"?`},
		{"camel case", "limits: {maxTimeout: 1s}\n" + base, "limits.maxTimeout", `unknown key; did you mean "max_timeout"?`},
		{"dash", "limits: {idle-timeout: 1s}\n" + base, "limits.idle-timeout", `unknown key; did you mean "idle_timeout"?`},
		{"upper case", "Listen: x\n" + base, "Listen", `unknown key; did you mean "listen"?`},
		{"misplaced", "shutdown_timeout: 1s\n" + base, "shutdown_timeout", `unknown key here; it belongs in limits`},
		{"misplaced, valid in several places", "period: 1s\n" + base, "period", `unknown key here; it belongs in guard, rate_limit.default or rate_limit.tiers.<name>.override`},
		{"misplaced into a list", "audiences: [x]\n" + base, "audiences", `unknown key here; it belongs in issuers[]`},
		{"misplaced to the top", "limits: {admin: x}\n" + base, "limits.admin", `unknown key here; it belongs in the top level`},
		{"misspelt here, valid elsewhere", "issuer: x\n" + base, "issuer", `unknown key; did you mean "issuers"? (issuer belongs in issuers[], routes[].exchange, revocation.feeds[] or ...)`},
		{"misspelt and misplaced", "max_timout: 1s\n" + base, "max_timout", `unknown key; did you mean limits.max_timeout?`},
		{"secret never read from the file", "rate_limit: {redis: {password: x}}\n" + base, "rate_limit.redis.password", `unknown key; did you mean "password_env"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := parseMistakes(t, tt.yaml)
			if len(got) != 1 || got[0].Path != tt.path || got[0].Message != tt.message {
				t.Errorf("mistakes:\n%s\nwant one: %s: %s", lines(got), tt.path, tt.message)
			}
		})
	}
}

// TestParseMisspeltKeyHidesItsConsequences wants no mistake about a
// required key when it was given, misspelt: the misspelling says it all.
func TestParseMisspeltKeyHidesItsConsequences(t *testing.T) {
	t.Parallel()
	got := parseMistakes(t, "route:\n  - {service: a.B, backend: \"http://b:1\"}\n")
	if len(got) != 1 || got[0].Path != "route" {
		t.Errorf("mistakes:\n%s\nwant only the misspelt key", lines(got))
	}
	got = parseMistakes(t, base+"rate_limit: {default: {requests: 1, perod: 1s}}\n")
	if len(got) != 1 || got[0].Path != "rate_limit.default.perod" {
		t.Errorf("mistakes:\n%s\nwant only the misspelt key", lines(got))
	}
}

func TestErrorListsMistakesWithFileAndPlace(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("bad.yaml", []byte("listne: x\nlimits: {max_timeout: 30}\n"), env(nil))
	want := `bad.yaml: 3 mistakes
bad.yaml:1:1: listne: unknown key; did you mean "listen"?
bad.yaml:2:23: limits.max_timeout: want a duration such as "30s", got the number 30: add a unit
bad.yaml: routes: at least one route is needed`
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant:\n%s", err, want)
	}
	_, err = config.Parse("one.yaml", []byte(base+"admin: x\n"), env(nil))
	if want := `one.yaml:2:8: admin: "x" is not host:port`; err == nil || err.Error() != want {
		t.Errorf("Error() = %v, want %s", err, want)
	}
}

// TestParseMergeKeys reads YAML merge keys, with the mapping's own keys
// winning over merged ones.
func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("merge.yaml", []byte(`
routes:
  - &route {service: a.B, backend: "http://b:1", protocol: connect}
  - {<<: *route, service: c.D}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Routes[1]; r.Service != "c.D" || r.Backend != "http://b:1" || r.Protocol != "connect" {
		t.Errorf("merged route = %+v", r)
	}
}

// TestParseBoundsAliasExpansion refuses a small file whose aliases
// expand to millions of values.
func TestParseBoundsAliasExpansion(t *testing.T) {
	t.Parallel()
	audiences := strings.Repeat("x,", 500)
	yaml := base + "issuers:\n  - &i {issuer: x, jwks_url: \"http://k\", audiences: [" + audiences + "]}\n" +
		"  - " + strings.Repeat("*i\n  - ", 299) + "*i\n"
	got := parseMistakes(t, yaml)
	if !slices.ContainsFunc(got, func(m config.Mistake) bool {
		return strings.HasPrefix(m.Message, "too many values: aliases expand to more than")
	}) {
		t.Errorf("got %d mistakes, none about too many values", len(got))
	}
}

// TestParseReadsMisspeltSections reports the mistakes inside a section
// whose key is misspelt, read as the section it most likely is.
func TestParseReadsMisspeltSections(t *testing.T) {
	t.Parallel()
	got := parseMistakes(t, base+"limts:\n  max_timeout: 30\n")
	want := []config.Mistake{
		{Path: "limts", Line: 2, Column: 1, Message: `unknown key; did you mean "limits"?`},
		{Path: "limts.max_timeout", Line: 3, Column: 16, Message: `want a duration such as "30s", got the number 30: add a unit`},
	}
	if !slices.Equal(got, want) {
		t.Errorf("mistakes:\n%s\nwant:\n%s", lines(got), lines(want))
	}
}
