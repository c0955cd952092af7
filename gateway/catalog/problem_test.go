package catalog_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/internal/prototest"
)

// positioned has a problem on lines 4, 7 and 11.
const positioned = `syntax = "proto3";
package pos.v1;
import "gateway/v1/options.proto";
enum PosPermission {
  option (gateway.v1.domain) = {name: "pos"};
  POS_PERMISSION_UNSPECIFIED = 0;
  POS_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 3}];
}
message M {}
service PosService {
  rpc Forgotten(M) returns (M);
}
`

func TestProblemPositions(t *testing.T) {
	t.Parallel()
	sources := map[string]string{"pos.proto": positioned}
	withPositions := []string{
		`pos.proto:4:1: pos.v1.PosPermission: domain-name: domain name "pos"`,
		"pos.proto:7:3: pos.v1.POS_PERMISSION_READ: mask-power-of-two: mask 3 of pos.READ is not a power of two",
		"pos.proto:11:3: pos.v1.PosService.Forgotten: no-access: method declares no (gateway.v1.access)",
	}
	withoutPositions := []string{
		`pos.proto: pos.v1.PosPermission: domain-name: domain name "pos"`,
		"pos.proto: pos.v1.POS_PERMISSION_READ: mask-power-of-two: mask 3 of pos.READ is not a power of two",
		"pos.proto: pos.v1.PosService.Forgotten: no-access: method declares no (gateway.v1.access)",
	}
	for _, tc := range []struct {
		name string
		load func(t *testing.T) (*protoregistry.Files, error)
		want []string
	}{
		{"linked", func(t *testing.T) (*protoregistry.Files, error) { return prototest.Files(t, sources), nil }, withPositions},
		{"image file", func(t *testing.T) (*protoregistry.Files, error) {
			return catalog.LoadImage(prototest.WriteImage(t, sources))
		}, withPositions},
		{"no source info", func(t *testing.T) (*protoregistry.Files, error) {
			// As compiled-in Go descriptors are: protoc-gen-go drops source info.
			set := prototest.Set(t, sources)
			for _, fd := range set.GetFile() {
				fd.SourceCodeInfo = nil
			}
			return catalog.NewFiles(set)
		}, withoutPositions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files, err := tc.load(t)
			if err != nil {
				t.Fatal(err)
			}
			_, err = catalog.New(files)
			var invalid *catalog.ValidationError
			if !errors.As(err, &invalid) || len(invalid.Problems) != len(tc.want) {
				t.Fatalf("New = %v; want %d problems", err, len(tc.want))
			}
			for i, p := range invalid.Problems {
				if got := p.String(); !strings.HasPrefix(got, tc.want[i]) {
					t.Errorf("problem %d = %q, want it to start with %q", i, got, tc.want[i])
				}
			}
			if p := invalid.Problems[2]; tc.name != "no source info" && (p.Line != 11 || p.Column != 3 || p.Position() != "pos.proto:11:3") {
				t.Errorf("Forgotten at line %d column %d (%s), want 11:3", p.Line, p.Column, p.Position())
			}
		})
	}
}

// shop is a file with a valid domain SHOP, a message M and the given
// declarations.
func shop(decls string) string {
	return `syntax = "proto3";
package shop.v1;
import "gateway/v1/options.proto";
enum ShopPermission {
  option (gateway.v1.domain) = {name: "SHOP"};
  SHOP_PERMISSION_UNSPECIFIED = 0;
  SHOP_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
}
message M {}
` + decls
}

// badDomain declares domain BAD, whose COPY repeats the mask of READ.
const badDomain = `enum BadPermission {
  option (gateway.v1.domain) = {name: "BAD"};
  BAD_PERMISSION_UNSPECIFIED = 0;
  BAD_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  BAD_PERMISSION_COPY = 2 [(gateway.v1.permission) = {mask: 1}];
}
`

// orders is a fully declared service.
const orders = `service Orders {
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["SHOP.READ"]}; }
}
`

// legacy is a service whose Ping declares no access.
const legacy = `service Legacy {
  rpc Status(M) returns (M) { option (gateway.v1.access) = {public: true}; }
  rpc Ping(M) returns (M);
}
`

func TestWithServices(t *testing.T) {
	t.Parallel()
	type want struct {
		element  string
		rule     catalog.Rule
		services string // the services it touches, comma-separated
	}
	const ordersOnly, legacyOnly = "shop.v1.Orders", "shop.v1.Legacy"
	cases := []struct {
		name     string
		source   string
		services []protoreflect.FullName // nil: no WithServices
		errors   []want                  // New fails with exactly these
		warnings []want                  // or succeeds with exactly these
		methods  []string                // the procedures in the catalog
	}{
		{
			name:     "an unrouted service without access is a warning",
			source:   shop(orders + legacy),
			services: []protoreflect.FullName{ordersOnly},
			warnings: []want{{"shop.v1.Legacy.Ping", catalog.RuleNoAccess, legacyOnly}},
			methods:  []string{"/shop.v1.Orders/Get"}, // none of Legacy, not even its valid Status
		},
		{
			name:     "a routed service without access is an error",
			source:   shop(orders + legacy),
			services: []protoreflect.FullName{ordersOnly, legacyOnly},
			errors:   []want{{"shop.v1.Legacy.Ping", catalog.RuleNoAccess, legacyOnly}},
		},
		{
			name:    "without WithServices every service is enforced",
			source:  shop(orders + legacy),
			errors:  []want{{"shop.v1.Legacy.Ping", catalog.RuleNoAccess, legacyOnly}},
			methods: nil,
		},
		{
			name: "a routed method uses a domain with duplicate masks",
			source: shop(badDomain + `service Orders {
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["SHOP.READ", "BAD.READ"]}; }
}
`),
			services: []protoreflect.FullName{ordersOnly},
			errors:   []want{{"shop.v1.BAD_PERMISSION_COPY", catalog.RuleDuplicateMask, ordersOnly}},
		},
		{
			name: "a routed service's default access uses a broken domain",
			source: shop(badDomain + `service Orders {
  option (gateway.v1.default_access) = {requires: ["BAD.READ"]};
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["SHOP.READ"]}; }
}
`),
			services: []protoreflect.FullName{ordersOnly},
			errors:   []want{{"shop.v1.BAD_PERMISSION_COPY", catalog.RuleDuplicateMask, ordersOnly}},
		},
		{
			name: "only an unrouted service uses a broken domain",
			source: shop(badDomain + orders + `service Legacy {
  rpc Ping(M) returns (M) { option (gateway.v1.access) = {requires: ["BAD.READ"]}; }
}
`),
			services: []protoreflect.FullName{ordersOnly},
			warnings: []want{{"shop.v1.BAD_PERMISSION_COPY", catalog.RuleDuplicateMask, legacyOnly}},
			methods:  []string{"/shop.v1.Orders/Get"},
		},
		{
			name:     "nobody uses a broken domain",
			source:   shop(badDomain + orders),
			services: []protoreflect.FullName{ordersOnly},
			warnings: []want{{"shop.v1.BAD_PERMISSION_COPY", catalog.RuleDuplicateMask, ""}},
			methods:  []string{"/shop.v1.Orders/Get"},
		},
		{
			name: "a routed service uses a domain declared twice",
			source: shop(`enum Again {
  option (gateway.v1.domain) = {name: "SHOP"};
  AGAIN_UNSPECIFIED = 0;
}
` + orders),
			services: []protoreflect.FullName{ordersOnly},
			errors:   []want{{"shop.v1.Again", catalog.RuleDuplicateDomain, ordersOnly}},
		},
		{
			name: "a routed method names an unknown permission",
			source: shop(`service Orders {
  rpc Get(M) returns (M) { option (gateway.v1.access) = {requires: ["SHOP.FLY"]}; }
}
`),
			services: []protoreflect.FullName{ordersOnly},
			errors:   []want{{"shop.v1.Orders.Get", catalog.RuleUnknownPermission, ordersOnly}},
		},
		{
			name: "a stray permission touches no service",
			source: shop(`enum Loose {
  LOOSE_UNSPECIFIED = 0;
  LOOSE_A = 1 [(gateway.v1.permission) = {mask: 1}];
}
` + orders),
			services: []protoreflect.FullName{ordersOnly},
			warnings: []want{{"shop.v1.LOOSE_A", catalog.RuleStrayPermission, ""}},
			methods:  []string{"/shop.v1.Orders/Get"},
		},
	}
	matches := func(ps []catalog.Problem, ws []want, severity catalog.Severity) error {
		if len(ps) != len(ws) {
			return fmt.Errorf("%d problems, want %d: %v", len(ps), len(ws), ps)
		}
		for i, w := range ws {
			p := ps[i]
			services := make([]string, len(p.Services))
			for j, s := range p.Services {
				services[j] = string(s)
			}
			got := want{p.Element, p.Rule, strings.Join(services, ",")}
			if got != w || p.Severity != severity || p.File != "shop.proto" || p.Line == 0 {
				return fmt.Errorf("problem %d = %+v (%s, line %d), want %+v (%s)", i, got, p.Severity, p.Line, w, severity)
			}
		}
		return nil
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := prototest.Files(t, map[string]string{"shop.proto": tc.source})
			var opts []catalog.Option
			if tc.services != nil {
				opts = append(opts, catalog.WithServices(tc.services...))
			}
			cat, err := catalog.New(files, opts...)
			if tc.errors != nil {
				var invalid *catalog.ValidationError
				if !errors.As(err, &invalid) || cat != nil {
					t.Fatalf("New = %v, %v; want a *ValidationError", cat, err)
				}
				if err := matches(invalid.Problems, tc.errors, catalog.SeverityError); err != nil {
					t.Error(err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := matches(cat.Warnings(), tc.warnings, catalog.SeverityWarning); err != nil {
				t.Error(err)
			}
			var methods []string
			for _, m := range cat.Methods() {
				methods = append(methods, m.Procedure)
			}
			if !slices.Equal(methods, tc.methods) {
				t.Errorf("methods = %v, want %v", methods, tc.methods)
			}
			for _, s := range cat.Services() {
				if s.FullName() == legacyOnly {
					t.Error("Services holds Legacy, which a problem touches")
				}
			}
		})
	}
}

func TestWithServicesReportsInvalidNames(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles, catalog.WithServices("example.orders.v1.OrdersService", "not a name", ""))
	if err == nil || err.Error() != `catalog: WithServices: "not a name" is not a full name; "" is not a full name` {
		t.Errorf("New = %v, %v", cat, err)
	}
}

func TestProblemLogValue(t *testing.T) {
	t.Parallel()
	files := prototest.Files(t, map[string]string{"shop.proto": shop(orders + legacy)})
	cat, err := catalog.New(files, catalog.WithServices("shop.v1.Orders"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	for _, p := range cat.Warnings() {
		logger.Warn("problem", "problem", p)
	}
	const want = `level=WARN msg=problem problem.at=shop.proto:15:3 problem.element=shop.v1.Legacy.Ping problem.rule=no-access ` +
		`problem.message="method declares no (gateway.v1.access) and service Legacy no (gateway.v1.default_access): it would be refused to everyone" ` +
		`problem.severity=warning problem.services=shop.v1.Legacy` + "\n"
	if buf.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
}
