package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/config"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/internal/logtest"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/issuer"
)

// legacyProto declares a domain whose COPY repeats the mask of READ (line
// 8) and a service whose Ping declares no access (line 15).
const legacyProto = `syntax = "proto3";
package legacy.v1;
import "gateway/v1/options.proto";
enum LegacyPermission {
  option (gateway.v1.domain) = {name: "LEG"};
  LEGACY_PERMISSION_UNSPECIFIED = 0;
  LEGACY_PERMISSION_READ = 1 [(gateway.v1.permission) = {mask: 1}];
  LEGACY_PERMISSION_COPY = 2 [(gateway.v1.permission) = {mask: 1}];
}
message M {}
service LegacyService {
  rpc Status(M) returns (M) {
    option (gateway.v1.access) = {requires: ["LEG.READ"]};
  }
  rpc Ping(M) returns (M);
}
`

// shopProto declares a fully declared service that requires LEG.READ.
const shopProto = `syntax = "proto3";
package shop.v1;
import "gateway/v1/options.proto";
import "legacy/v1/legacy.proto";
service ShopService {
  rpc Get(legacy.v1.M) returns (legacy.v1.M) {
    option (gateway.v1.access) = {requires: ["LEG.READ"]};
  }
}
`

// logRecord is a line of the gateway's JSON log.
type logRecord struct {
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	Problem *struct {
		At, Element, Rule, Message, Severity, Services string
	} `json:"problem"`
}

func TestUnroutedServiceProblemsAreWarnings(t *testing.T) {
	t.Parallel()
	image := prototest.WriteImage(t, map[string]string{"legacy/v1/legacy.proto": legacyProto})
	logs := new(logtest.Buffer)
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	s := newStack(t, fmt.Sprintf("descriptors: {images: [%q], compiled_in: true}\n", image), gateway.WithLogger(logger))

	// The gateway started and serves the routed services.
	secret := s.issuer.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"LIC.READ_REQUIREMENTS"}})
	client := s.licensingClient(s.issuer.Token(t, "reader", secret))
	if _, err := client.ListRequirements(context.Background(), connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})); err != nil {
		t.Errorf("routed call: %v", err)
	}

	// It warned once per problem, naming where each is.
	var warnings []string
	for line := range strings.Lines(logs.String()) {
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r.Problem != nil {
			warnings = append(warnings, fmt.Sprintf("%s %s %s %s %s %s", r.Level, r.Problem.At, r.Problem.Element, r.Problem.Rule, r.Problem.Severity, r.Problem.Services))
		}
	}
	want := []string{
		"WARN legacy/v1/legacy.proto:8:3 legacy.v1.LEGACY_PERMISSION_COPY duplicate-mask warning legacy.v1.LegacyService",
		"WARN legacy/v1/legacy.proto:15:3 legacy.v1.LegacyService.Ping no-access warning legacy.v1.LegacyService",
	}
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"), logs.String())
	}

	// The unrouted service is neither served nor in the catalog, not even
	// its declared method.
	if _, ok := s.gateway.Catalog().Method("/legacy.v1.LegacyService/Status"); ok {
		t.Error("the catalog enforces a method of a service with problems")
	}
	resp := postJSON(t, s.url+"/legacy.v1.LegacyService/Status", "", `{}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unrouted service: %d, want 404", resp.StatusCode)
	}
}

func TestRoutedServiceProblemsStopTheGateway(t *testing.T) {
	t.Parallel()
	image := prototest.WriteImage(t, map[string]string{"legacy/v1/legacy.proto": legacyProto, "shop/v1/shop.proto": shopProto})
	for _, tc := range []struct {
		name    string
		service string
		want    []string // in the error
		notWant []string // not in the error
	}{
		{
			name:    "a method without access",
			service: "legacy.v1.LegacyService",
			want: []string{
				"catalog: 2 problems",
				"legacy/v1/legacy.proto:8:3: legacy.v1.LEGACY_PERMISSION_COPY: duplicate-mask: mask 1 of LEG.COPY is already the mask of LEG.READ",
				"legacy/v1/legacy.proto:15:3: legacy.v1.LegacyService.Ping: no-access: method declares no (gateway.v1.access)",
			},
		},
		{
			name:    "a method requiring a broken domain",
			service: "shop.v1.ShopService",
			want: []string{
				"catalog: 1 problem\n",
				"legacy/v1/legacy.proto:8:3: legacy.v1.LEGACY_PERMISSION_COPY: duplicate-mask:",
			},
			notWant: []string{"Ping"}, // a warning: LegacyService is not routed
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("routes.yaml", fmt.Appendf(nil, `
descriptors: {images: [%q], compiled_in: true}
routes:
  - {service: example.orders.v1.OrdersService, backend: "http://127.0.0.1:1"}
  - {service: %s, backend: "http://127.0.0.1:1"}
`, image, tc.service), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
			if err == nil {
				gw.Close()
				t.Fatal("New accepted a routed service with problems")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			for _, notWant := range tc.notWant {
				if strings.Contains(err.Error(), notWant) {
					t.Errorf("error names %q:\n%v", notWant, err)
				}
			}
		})
	}
}
