package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/prototest"
)

// runCLI runs the command line in process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckExamples(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "check")
	if code != 0 || stdout != "ok: 3 domains, 7 permissions, 15 methods, 1 public\n" {
		t.Errorf("check = %d, %q, %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "check", "--image", "../../gen/portcullis.binpb")
	if code != 0 || stdout != "ok: 3 domains, 7 permissions, 15 methods, 1 public\n" {
		t.Errorf("check --image = %d, %q, %q", code, stdout, stderr)
	}
}

// badProto breaks a rule on nearly every line.
const badProto = `syntax = "proto3";
package bad.v1;
import "gateway/v1/options.proto";
enum BadPermission {
  option (gateway.v1.domain) = {name: "bad"};
  BAD_PERMISSION_UNSPECIFIED = 0;
  BAD_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 3}];
  BAD_PERMISSION_WRITE = 2 [(gateway.v1.permission) = {mask: 9007199254740992}];
  BAD_PERMISSION_ADMIN = 4;
}
enum GoodPermission {
  option (gateway.v1.domain) = {name: "GOOD"};
  GOOD_PERMISSION_UNSPECIFIED = 0;
  GOOD_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  GOOD_PERMISSION_COPY = 2 [(gateway.v1.permission) = {mask: 1}];
}
message M {}
service BadService {
  rpc Forgotten(M) returns (M);
  rpc Confused(M) returns (M) { option (gateway.v1.access) = {public: true, requires: ["GOOD.READ"]}; }
  rpc Typo(M) returns (M) { option (gateway.v1.access) = {requires: ["GOOD.RAED", "GOD.READ"]}; }
}
`

func TestCheckNamesEveryMistake(t *testing.T) {
	t.Parallel()
	sources := map[string]string{"bad/v1/bad.proto": badProto}
	mistakes := []struct{ at, problem string }{
		{":4:1", `bad.v1.BadPermission: domain-name: domain name "bad"`},
		{":7:3", "bad.v1.BAD_PERMISSION_READ: mask-power-of-two: mask 3 of bad.READ is not a power of two"},
		{":8:3", "bad.v1.BAD_PERMISSION_WRITE: mask-range: mask 9007199254740992 of bad.WRITE is above 2^52"},
		{":9:3", "bad.v1.BAD_PERMISSION_ADMIN: missing-permission:"},
		{":15:3", "bad.v1.GOOD_PERMISSION_COPY: duplicate-mask: mask 1 of GOOD.COPY is already the mask of GOOD.READ"},
		{":19:3", "bad.v1.BadService.Forgotten: no-access:"},
		{":20:3", "bad.v1.BadService.Confused: public-and-requires:"},
		{":21:3", `bad.v1.BadService.Typo: unknown-permission: requirement "GOOD.RAED" names no permission of domain GOOD`},
		{":21:3", `bad.v1.BadService.Typo: unknown-domain: requirement "GOD.READ" names unknown domain "GOD"`},
	}
	for _, tc := range []struct {
		name      string
		image     func(t *testing.T) string
		positions bool
	}{
		{"image with source info", func(t *testing.T) string { return prototest.WriteImage(t, sources) }, true},
		{"image without source info", func(t *testing.T) string {
			// buf build --exclude-source-info: the file path and element
			// name still place every problem.
			set := prototest.Set(t, sources)
			for _, fd := range set.GetFile() {
				fd.SourceCodeInfo = nil
			}
			return prototest.WriteSet(t, set)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, "check", "--image", tc.image(t))
			if code != 1 || stdout != "" {
				t.Errorf("check = %d, stdout %q; want 1 and nothing", code, stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != len(mistakes)+1 || lines[len(lines)-1] != "9 problem(s)" {
				t.Fatalf("stderr has %d lines, want %d and a count:\n%s", len(lines), len(mistakes)+1, stderr)
			}
			for i, m := range mistakes {
				want := "bad/v1/bad.proto: " + m.problem
				if tc.positions {
					want = "bad/v1/bad.proto" + m.at + ": " + m.problem
				}
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], want)
				}
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	t.Parallel()
	if code, _, stderr := runCLI(t, "check", "--image", "/nonexistent.binpb"); code != 1 || !strings.Contains(stderr, "read image") {
		t.Errorf("missing image: %d %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "check", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code, _, stderr := runCLI(t, "nope"); code != 2 || !strings.Contains(stderr, `unknown command "nope"`) {
		t.Errorf("unknown command: %d %q", code, stderr)
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "access")
	if code != 0 {
		t.Fatalf("access = %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 16 || !strings.HasPrefix(lines[0], "METHOD") {
		t.Fatalf("table has %d lines:\n%s", len(lines), stdout)
	}
	if !strings.Contains(stdout, "/example.orders.v1.OrdersService/SyncOrders") ||
		!strings.Contains(stdout, "LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2)  LIC=2 ORD=3") {
		t.Errorf("table lacks SyncOrders' requirements:\n%s", stdout)
	}

	code, stdout, _ = runCLI(t, "access", "--format", "json")
	var rows []struct {
		Procedure string            `json:"procedure"`
		Public    bool              `json:"public"`
		Masks     map[string]uint64 `json:"masks"`
		Requires  []struct {
			Permission string `json:"permission"`
			Mask       uint64 `json:"mask"`
		} `json:"requires"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); code != 0 || err != nil {
		t.Fatalf("json: %d %v\n%s", code, err, stdout)
	}
	byName := map[string]int{}
	for i, r := range rows {
		byName[r.Procedure] = i
	}
	place := rows[byName["/example.orders.v1.OrdersService/PlaceOrder"]]
	if place.Masks["LIC"] != 1 || place.Masks["ORD"] != 2 || len(place.Requires) != 2 || place.Requires[0].Permission != "LIC.READ_REQUIREMENTS" {
		t.Errorf("PlaceOrder = %+v", place)
	}
	if !rows[byName["/example.licensing.v1.LicensingService/ListJurisdictions"]].Public {
		t.Error("ListJurisdictions is not public in the JSON")
	}

	code, stdout, _ = runCLI(t, "access", "--format", "markdown")
	if code != 0 || !strings.HasPrefix(stdout, "| Method | Access | Requires | Masks | Rate limit |\n|---|") {
		t.Errorf("markdown = %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "access", "--format", "yaml"); code != 2 || !strings.Contains(stderr, `unknown format "yaml"`) {
		t.Errorf("bad format: %d %q", code, stderr)
	}
}
