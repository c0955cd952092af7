package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/services/issuer"
)

// testRegistry writes a registry of four clients of the example catalog:
// one granted everything, a reader, an auditor of licence orders, and one
// granted nothing.
func testRegistry(t *testing.T) string {
	t.Helper()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clients.yaml")
	for _, c := range []issuer.Client{
		{ID: "operator", Grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}, Tier: "pro"},
		{ID: "reader", Grants: []string{"ORD.READ", "LIC.READ_REQUIREMENTS"}},
		{ID: "auditor", Grants: []string{"LIC.READ_ORDERS"}, Tier: "partner"},
		{ID: "idle"},
	} {
		if _, err := issuer.AddClient(path, cat, c); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// compactJSON returns out compacted when want is JSON, so that want can be
// written on one line; other outputs as they are.
func compactJSON(t *testing.T, out, want string) string {
	t.Helper()
	if !strings.HasPrefix(want, "{") && !strings.HasPrefix(want, "[") {
		return out
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(out)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return compact.String()
}

// Who can call what, joined with the registry: each query kind in each
// format, exactly as printed.
func TestAccessWithRegistry(t *testing.T) {
	t.Parallel()
	registry := testRegistry(t)
	const (
		create = "/example.licensing.v1.LicensingService/CreateLicenceOrder"
		public = "example.licensing.v1.LicensingService/ListJurisdictions"
	)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"every method", nil, `METHOD                                                     ACCESS               REQUIRES                                          MASKS         RATE LIMIT         CLIENTS
/example.licensing.v1.LicensingService/CreateLicenceOrder  token, max age 5m0s  LIC.READ_ORDERS (2), LIC.WRITE_ORDERS (4)         LIC=6         10/1s burst 5      operator
/example.licensing.v1.LicensingService/GetLicenceOrder     token                LIC.READ_ORDERS (2)                               LIC=2         -                  auditor, operator
/example.licensing.v1.LicensingService/ListJurisdictions   public               -                                                 -             60/1m0s burst 10   anyone
/example.licensing.v1.LicensingService/ListRequirements    token                LIC.READ_REQUIREMENTS (1)                         LIC=1         -                  operator, reader
/example.licensing.v1.LicensingService/WatchLicenceOrders  token                LIC.READ_ORDERS (2)                               LIC=2         -                  auditor, operator
/example.orders.v1.OrdersService/GetOrder                  token                ORD.READ (1)                                      ORD=1         100/1m0s burst 20  operator, reader
/example.orders.v1.OrdersService/ImportOrders              token                LIC.WRITE_ORDERS (4), ORD.WRITE (2)               LIC=4 ORD=2   100/1m0s burst 20  operator
/example.orders.v1.OrdersService/PlaceOrder                token, high value    LIC.READ_REQUIREMENTS (1), ORD.WRITE (2)          LIC=1 ORD=2   100/1m0s burst 20  operator
/example.orders.v1.OrdersService/SyncOrders                token                LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2)  LIC=2 ORD=3   100/1m0s burst 20  operator
/portcullis.admin.v1.ClientAdminService/CreateClient       token                PORTCULLIS.MANAGE_CLIENTS (2)                     PORTCULLIS=2  -                  -
/portcullis.admin.v1.ClientAdminService/ListClients        token                PORTCULLIS.READ_CLIENTS (1)                       PORTCULLIS=1  -                  -
/portcullis.admin.v1.ClientAdminService/ListPermissions    token                PORTCULLIS.READ_CLIENTS (1)                       PORTCULLIS=1  -                  -
/portcullis.admin.v1.ClientAdminService/RevokeClient       token                PORTCULLIS.MANAGE_CLIENTS (2)                     PORTCULLIS=2  -                  -
/portcullis.admin.v1.ClientAdminService/RotateSecret       token                PORTCULLIS.MANAGE_CLIENTS (2)                     PORTCULLIS=2  -                  -
/portcullis.admin.v1.ClientAdminService/UpdateGrants       token                PORTCULLIS.MANAGE_CLIENTS (2)                     PORTCULLIS=2  -                  -
`},
		{"every method, markdown", []string{"--format", "markdown"}, "| Method | Access | Requires | Masks | Rate limit | Clients |\n|---|---|---|---|---|---|\n| `/example.licensing.v1.LicensingService/CreateLicenceOrder` | token, max age 5m0s | LIC.READ_ORDERS (2), LIC.WRITE_ORDERS (4) | LIC=6 | 10/1s burst 5 | `operator` |\n| `/example.licensing.v1.LicensingService/GetLicenceOrder` | token | LIC.READ_ORDERS (2) | LIC=2 | - | `auditor`, `operator` |\n| `/example.licensing.v1.LicensingService/ListJurisdictions` | public | - | - | 60/1m0s burst 10 | anyone |\n| `/example.licensing.v1.LicensingService/ListRequirements` | token | LIC.READ_REQUIREMENTS (1) | LIC=1 | - | `operator`, `reader` |\n| `/example.licensing.v1.LicensingService/WatchLicenceOrders` | token | LIC.READ_ORDERS (2) | LIC=2 | - | `auditor`, `operator` |\n| `/example.orders.v1.OrdersService/GetOrder` | token | ORD.READ (1) | ORD=1 | 100/1m0s burst 20 | `operator`, `reader` |\n| `/example.orders.v1.OrdersService/ImportOrders` | token | LIC.WRITE_ORDERS (4), ORD.WRITE (2) | LIC=4 ORD=2 | 100/1m0s burst 20 | `operator` |\n| `/example.orders.v1.OrdersService/PlaceOrder` | token, high value | LIC.READ_REQUIREMENTS (1), ORD.WRITE (2) | LIC=1 ORD=2 | 100/1m0s burst 20 | `operator` |\n| `/example.orders.v1.OrdersService/SyncOrders` | token | LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2) | LIC=2 ORD=3 | 100/1m0s burst 20 | `operator` |\n| `/portcullis.admin.v1.ClientAdminService/CreateClient` | token | PORTCULLIS.MANAGE_CLIENTS (2) | PORTCULLIS=2 | - | - |\n| `/portcullis.admin.v1.ClientAdminService/ListClients` | token | PORTCULLIS.READ_CLIENTS (1) | PORTCULLIS=1 | - | - |\n| `/portcullis.admin.v1.ClientAdminService/ListPermissions` | token | PORTCULLIS.READ_CLIENTS (1) | PORTCULLIS=1 | - | - |\n| `/portcullis.admin.v1.ClientAdminService/RevokeClient` | token | PORTCULLIS.MANAGE_CLIENTS (2) | PORTCULLIS=2 | - | - |\n| `/portcullis.admin.v1.ClientAdminService/RotateSecret` | token | PORTCULLIS.MANAGE_CLIENTS (2) | PORTCULLIS=2 | - | - |\n| `/portcullis.admin.v1.ClientAdminService/UpdateGrants` | token | PORTCULLIS.MANAGE_CLIENTS (2) | PORTCULLIS=2 | - | - |\n"},
		{"service", []string{"--service", "example.orders.v1.OrdersService", "--format", "text"}, `METHOD                                         ACCESS             REQUIRES                                          MASKS        RATE LIMIT         CLIENTS
/example.orders.v1.OrdersService/GetOrder      token              ORD.READ (1)                                      ORD=1        100/1m0s burst 20  operator, reader
/example.orders.v1.OrdersService/ImportOrders  token              LIC.WRITE_ORDERS (4), ORD.WRITE (2)               LIC=4 ORD=2  100/1m0s burst 20  operator
/example.orders.v1.OrdersService/PlaceOrder    token, high value  LIC.READ_REQUIREMENTS (1), ORD.WRITE (2)          LIC=1 ORD=2  100/1m0s burst 20  operator
/example.orders.v1.OrdersService/SyncOrders    token              LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2)  LIC=2 ORD=3  100/1m0s burst 20  operator
`},
		{"service, json", []string{"--service", "example.orders.v1.OrdersService", "--format", "json"}, `[{"procedure":"/example.orders.v1.OrdersService/GetOrder","public":false,"requires":[{"permission":"ORD.READ","mask":1,"description":"Read orders"}],"masks":{"ORD":1},"rate_limit":{"requests":100,"period":"1m0s","burst":20},"clients":["operator","reader"]},{"procedure":"/example.orders.v1.OrdersService/ImportOrders","public":false,"requires":[{"permission":"LIC.WRITE_ORDERS","mask":4,"description":"Create and change licence orders"},{"permission":"ORD.WRITE","mask":2,"description":"Place and import orders"}],"masks":{"LIC":4,"ORD":2},"rate_limit":{"requests":100,"period":"1m0s","burst":20},"clients":["operator"]},{"procedure":"/example.orders.v1.OrdersService/PlaceOrder","public":false,"requires":[{"permission":"LIC.READ_REQUIREMENTS","mask":1,"description":"Read licence requirements"},{"permission":"ORD.WRITE","mask":2,"description":"Place and import orders"}],"masks":{"LIC":1,"ORD":2},"rate_limit":{"requests":100,"period":"1m0s","burst":20},"high_value":true,"clients":["operator"]},{"procedure":"/example.orders.v1.OrdersService/SyncOrders","public":false,"requires":[{"permission":"LIC.READ_ORDERS","mask":2,"description":"Read licence orders"},{"permission":"ORD.READ","mask":1,"description":"Read orders"},{"permission":"ORD.WRITE","mask":2,"description":"Place and import orders"}],"masks":{"LIC":2,"ORD":3},"rate_limit":{"requests":100,"period":"1m0s","burst":20},"clients":["operator"]}]`},
		{"method", []string{"--method", create}, `METHOD      /example.licensing.v1.LicensingService/CreateLicenceOrder
ACCESS      token, max age 5m0s
REQUIRES    LIC.READ_ORDERS (2), LIC.WRITE_ORDERS (4)
MASKS       LIC=6
RATE LIMIT  10/1s burst 5

CAN CALL  TIER  THROUGH
operator  pro   LIC.READ_ORDERS, LIC.WRITE_ORDERS

CANNOT CALL  TIER     MISSING
auditor      partner  LIC.WRITE_ORDERS
idle         -        LIC.READ_ORDERS, LIC.WRITE_ORDERS
reader       -        LIC.READ_ORDERS, LIC.WRITE_ORDERS
`},
		{"method, markdown", []string{"--method", create, "--format", "markdown"}, "### `/example.licensing.v1.LicensingService/CreateLicenceOrder`\n\n| Access | Requires | Masks | Rate limit |\n|---|---|---|---|\n| token, max age 5m0s | LIC.READ_ORDERS (2), LIC.WRITE_ORDERS (4) | LIC=6 | 10/1s burst 5 |\n\n| Can call | Tier | Through |\n|---|---|---|\n| `operator` | pro | LIC.READ_ORDERS, LIC.WRITE_ORDERS |\n\n| Cannot call | Tier | Missing |\n|---|---|---|\n| `auditor` | partner | LIC.WRITE_ORDERS |\n| `idle` | - | LIC.READ_ORDERS, LIC.WRITE_ORDERS |\n| `reader` | - | LIC.READ_ORDERS, LIC.WRITE_ORDERS |\n"},
		{"method, json", []string{"--method", create, "--format", "json"}, `{"method":{"procedure":"/example.licensing.v1.LicensingService/CreateLicenceOrder","public":false,"requires":[{"permission":"LIC.READ_ORDERS","mask":2,"description":"Read licence orders"},{"permission":"LIC.WRITE_ORDERS","mask":4,"description":"Create and change licence orders"}],"masks":{"LIC":6},"rate_limit":{"requests":10,"period":"1s","burst":5},"max_token_age":"5m0s"},"clients":[{"client_id":"operator","tier":"pro","through":["LIC.READ_ORDERS","LIC.WRITE_ORDERS"]}],"denied":[{"client_id":"auditor","tier":"partner","missing":["LIC.WRITE_ORDERS"]},{"client_id":"idle","missing":["LIC.READ_ORDERS","LIC.WRITE_ORDERS"]},{"client_id":"reader","missing":["LIC.READ_ORDERS","LIC.WRITE_ORDERS"]}]}`},
		{"public method", []string{"--method", public}, `METHOD      /example.licensing.v1.LicensingService/ListJurisdictions
ACCESS      public
REQUIRES    -
MASKS       -
RATE LIMIT  60/1m0s burst 10

Anyone can call it, with a token or without.
`},
		{"public method, json", []string{"--method", public, "--format", "json"}, `{"method":{"procedure":"/example.licensing.v1.LicensingService/ListJurisdictions","public":true,"requires":[],"masks":{},"rate_limit":{"requests":60,"period":"1m0s","burst":10}},` +
			`"clients":[{"client_id":"auditor","tier":"partner","through":[]},{"client_id":"idle","through":[]},{"client_id":"operator","tier":"pro","through":[]},{"client_id":"reader","through":[]}],"denied":[]}`},
		{"client", []string{"--client", "reader"}, `CLIENT  reader
TIER    -
GRANTS  LIC.READ_REQUIREMENTS, ORD.READ

CAN CALL                                                  THROUGH
/example.licensing.v1.LicensingService/ListJurisdictions  public
/example.licensing.v1.LicensingService/ListRequirements   LIC.READ_REQUIREMENTS
/example.orders.v1.OrdersService/GetOrder                 ORD.READ

CANNOT CALL                                                MISSING
/example.licensing.v1.LicensingService/CreateLicenceOrder  LIC.READ_ORDERS, LIC.WRITE_ORDERS
/example.licensing.v1.LicensingService/GetLicenceOrder     LIC.READ_ORDERS
/example.licensing.v1.LicensingService/WatchLicenceOrders  LIC.READ_ORDERS
/example.orders.v1.OrdersService/ImportOrders              LIC.WRITE_ORDERS, ORD.WRITE
/example.orders.v1.OrdersService/PlaceOrder                ORD.WRITE
/example.orders.v1.OrdersService/SyncOrders                LIC.READ_ORDERS, ORD.WRITE
/portcullis.admin.v1.ClientAdminService/CreateClient       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListClients        PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListPermissions    PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/RevokeClient       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/RotateSecret       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/UpdateGrants       PORTCULLIS.MANAGE_CLIENTS
`},
		{"client granted everything", []string{"--client", "operator"}, `CLIENT  operator
TIER    pro
GRANTS  LIC.READ_REQUIREMENTS, LIC.READ_ORDERS, LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE

CAN CALL                                                   THROUGH
/example.licensing.v1.LicensingService/CreateLicenceOrder  LIC.READ_ORDERS, LIC.WRITE_ORDERS
/example.licensing.v1.LicensingService/GetLicenceOrder     LIC.READ_ORDERS
/example.licensing.v1.LicensingService/ListJurisdictions   public
/example.licensing.v1.LicensingService/ListRequirements    LIC.READ_REQUIREMENTS
/example.licensing.v1.LicensingService/WatchLicenceOrders  LIC.READ_ORDERS
/example.orders.v1.OrdersService/GetOrder                  ORD.READ
/example.orders.v1.OrdersService/ImportOrders              LIC.WRITE_ORDERS, ORD.WRITE
/example.orders.v1.OrdersService/PlaceOrder                LIC.READ_REQUIREMENTS, ORD.WRITE
/example.orders.v1.OrdersService/SyncOrders                LIC.READ_ORDERS, ORD.READ, ORD.WRITE

CANNOT CALL                                              MISSING
/portcullis.admin.v1.ClientAdminService/CreateClient     PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListClients      PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListPermissions  PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/RevokeClient     PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/RotateSecret     PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/UpdateGrants     PORTCULLIS.MANAGE_CLIENTS
`},
		{"client, markdown", []string{"--client", "auditor", "--format", "markdown"}, "### Client `auditor`\n\nTier: partner. Grants: LIC.READ_ORDERS.\n\n| Can call | Through |\n|---|---|\n| `/example.licensing.v1.LicensingService/GetLicenceOrder` | LIC.READ_ORDERS |\n| `/example.licensing.v1.LicensingService/ListJurisdictions` | public |\n| `/example.licensing.v1.LicensingService/WatchLicenceOrders` | LIC.READ_ORDERS |\n\n| Cannot call | Missing |\n|---|---|\n| `/example.licensing.v1.LicensingService/CreateLicenceOrder` | LIC.WRITE_ORDERS |\n| `/example.licensing.v1.LicensingService/ListRequirements` | LIC.READ_REQUIREMENTS |\n| `/example.orders.v1.OrdersService/GetOrder` | ORD.READ |\n| `/example.orders.v1.OrdersService/ImportOrders` | LIC.WRITE_ORDERS, ORD.WRITE |\n| `/example.orders.v1.OrdersService/PlaceOrder` | LIC.READ_REQUIREMENTS, ORD.WRITE |\n| `/example.orders.v1.OrdersService/SyncOrders` | ORD.READ, ORD.WRITE |\n| `/portcullis.admin.v1.ClientAdminService/CreateClient` | PORTCULLIS.MANAGE_CLIENTS |\n| `/portcullis.admin.v1.ClientAdminService/ListClients` | PORTCULLIS.READ_CLIENTS |\n| `/portcullis.admin.v1.ClientAdminService/ListPermissions` | PORTCULLIS.READ_CLIENTS |\n| `/portcullis.admin.v1.ClientAdminService/RevokeClient` | PORTCULLIS.MANAGE_CLIENTS |\n| `/portcullis.admin.v1.ClientAdminService/RotateSecret` | PORTCULLIS.MANAGE_CLIENTS |\n| `/portcullis.admin.v1.ClientAdminService/UpdateGrants` | PORTCULLIS.MANAGE_CLIENTS |\n"},
		{"client, json", []string{"--client", "reader", "--format", "json"}, `{"client":{"client_id":"reader","grants":["LIC.READ_REQUIREMENTS","ORD.READ"]},"methods":[{"procedure":"/example.licensing.v1.LicensingService/ListJurisdictions","public":true,"through":[]},{"procedure":"/example.licensing.v1.LicensingService/ListRequirements","public":false,"through":["LIC.READ_REQUIREMENTS"]},{"procedure":"/example.orders.v1.OrdersService/GetOrder","public":false,"through":["ORD.READ"]}],"denied":[{"procedure":"/example.licensing.v1.LicensingService/CreateLicenceOrder","missing":["LIC.READ_ORDERS","LIC.WRITE_ORDERS"]},{"procedure":"/example.licensing.v1.LicensingService/GetLicenceOrder","missing":["LIC.READ_ORDERS"]},{"procedure":"/example.licensing.v1.LicensingService/WatchLicenceOrders","missing":["LIC.READ_ORDERS"]},{"procedure":"/example.orders.v1.OrdersService/ImportOrders","missing":["LIC.WRITE_ORDERS","ORD.WRITE"]},{"procedure":"/example.orders.v1.OrdersService/PlaceOrder","missing":["ORD.WRITE"]},{"procedure":"/example.orders.v1.OrdersService/SyncOrders","missing":["LIC.READ_ORDERS","ORD.WRITE"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/CreateClient","missing":["PORTCULLIS.MANAGE_CLIENTS"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/ListClients","missing":["PORTCULLIS.READ_CLIENTS"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/ListPermissions","missing":["PORTCULLIS.READ_CLIENTS"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/RevokeClient","missing":["PORTCULLIS.MANAGE_CLIENTS"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/RotateSecret","missing":["PORTCULLIS.MANAGE_CLIENTS"]},{"procedure":"/portcullis.admin.v1.ClientAdminService/UpdateGrants","missing":["PORTCULLIS.MANAGE_CLIENTS"]}]}`},
		{"client granted nothing", []string{"--client", "idle"}, `CLIENT  idle
TIER    -
GRANTS  -

CAN CALL                                                  THROUGH
/example.licensing.v1.LicensingService/ListJurisdictions  public

CANNOT CALL                                                MISSING
/example.licensing.v1.LicensingService/CreateLicenceOrder  LIC.READ_ORDERS, LIC.WRITE_ORDERS
/example.licensing.v1.LicensingService/GetLicenceOrder     LIC.READ_ORDERS
/example.licensing.v1.LicensingService/ListRequirements    LIC.READ_REQUIREMENTS
/example.licensing.v1.LicensingService/WatchLicenceOrders  LIC.READ_ORDERS
/example.orders.v1.OrdersService/GetOrder                  ORD.READ
/example.orders.v1.OrdersService/ImportOrders              LIC.WRITE_ORDERS, ORD.WRITE
/example.orders.v1.OrdersService/PlaceOrder                LIC.READ_REQUIREMENTS, ORD.WRITE
/example.orders.v1.OrdersService/SyncOrders                LIC.READ_ORDERS, ORD.READ, ORD.WRITE
/portcullis.admin.v1.ClientAdminService/CreateClient       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListClients        PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/ListPermissions    PORTCULLIS.READ_CLIENTS
/portcullis.admin.v1.ClientAdminService/RevokeClient       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/RotateSecret       PORTCULLIS.MANAGE_CLIENTS
/portcullis.admin.v1.ClientAdminService/UpdateGrants       PORTCULLIS.MANAGE_CLIENTS
`},
		{"permission", []string{"--permission", "LIC.READ_ORDERS"}, `PERMISSION   LIC.READ_ORDERS
MASK         LIC=2
DESCRIPTION  Read licence orders

REQUIRED BY                                                REQUIRES
/example.licensing.v1.LicensingService/CreateLicenceOrder  LIC.READ_ORDERS (2), LIC.WRITE_ORDERS (4)
/example.licensing.v1.LicensingService/GetLicenceOrder     LIC.READ_ORDERS (2)
/example.licensing.v1.LicensingService/WatchLicenceOrders  LIC.READ_ORDERS (2)
/example.orders.v1.OrdersService/SyncOrders                LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2)

HELD BY   TIER
auditor   partner
operator  pro
`},
		{"permission, markdown", []string{"--permission", "ORD.WRITE", "--format", "markdown"}, "### Permission `ORD.WRITE`\n\nMask `ORD=2`: Place and import orders\n\n" +
			"| Required by | Requires |\n|---|---|\n" +
			"| `/example.orders.v1.OrdersService/ImportOrders` | LIC.WRITE_ORDERS (4), ORD.WRITE (2) |\n" +
			"| `/example.orders.v1.OrdersService/PlaceOrder` | LIC.READ_REQUIREMENTS (1), ORD.WRITE (2) |\n" +
			"| `/example.orders.v1.OrdersService/SyncOrders` | LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2) |\n\n" +
			"| Held by | Tier |\n|---|---|\n| `operator` | pro |\n"},
		{"permission, json", []string{"--permission", "LIC.WRITE_ORDERS", "--format", "json"}, `{"permission":{"permission":"LIC.WRITE_ORDERS","mask":4,"description":"Create and change licence orders"},"methods":[{"procedure":"/example.licensing.v1.LicensingService/CreateLicenceOrder","public":false,"requires":[{"permission":"LIC.READ_ORDERS","mask":2,"description":"Read licence orders"},{"permission":"LIC.WRITE_ORDERS","mask":4,"description":"Create and change licence orders"}],"masks":{"LIC":6},"rate_limit":{"requests":10,"period":"1s","burst":5},"max_token_age":"5m0s"},{"procedure":"/example.orders.v1.OrdersService/ImportOrders","public":false,"requires":[{"permission":"LIC.WRITE_ORDERS","mask":4,"description":"Create and change licence orders"},{"permission":"ORD.WRITE","mask":2,"description":"Place and import orders"}],"masks":{"LIC":4,"ORD":2},"rate_limit":{"requests":100,"period":"1m0s","burst":20}}],"clients":[{"client_id":"operator","tier":"pro"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, append([]string{"access", "--registry", registry}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if stdout = compactJSON(t, stdout, tc.want); stdout != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", stdout, tc.want)
			}
		})
	}
}

// Without a registry, the queries answer from the catalog alone.
func TestAccessQueriesWithoutRegistry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "/example.orders.v1.OrdersService/PlaceOrder"}, `METHOD      /example.orders.v1.OrdersService/PlaceOrder
ACCESS      token, high value
REQUIRES    LIC.READ_REQUIREMENTS (1), ORD.WRITE (2)
MASKS       LIC=1 ORD=2
RATE LIMIT  100/1m0s burst 20
`},
		{[]string{"--permission", "LIC.READ_REQUIREMENTS", "--format", "markdown"}, "### Permission `LIC.READ_REQUIREMENTS`\n\nMask `LIC=1`: Read licence requirements\n\n" +
			"| Required by | Requires |\n|---|---|\n" +
			"| `/example.licensing.v1.LicensingService/ListRequirements` | LIC.READ_REQUIREMENTS (1) |\n" +
			"| `/example.orders.v1.OrdersService/PlaceOrder` | LIC.READ_REQUIREMENTS (1), ORD.WRITE (2) |\n"},
		{[]string{"--method", "example.orders.v1.OrdersService/GetOrder", "--format", "json"},
			`{"method":{"procedure":"/example.orders.v1.OrdersService/GetOrder","public":false,"requires":[{"permission":"ORD.READ","mask":1,"description":"Read orders"}],"masks":{"ORD":1},"rate_limit":{"requests":100,"period":"1m0s","burst":20}}}`},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"access"}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		if stdout = compactJSON(t, stdout, tc.want); stdout != tc.want {
			t.Errorf("%v: got:\n%s\nwant:\n%s", tc.args, stdout, tc.want)
		}
	}
	// With no registry, the full listing is as it always was: no client column.
	if _, stdout, _ := runCLI(t, "access"); strings.HasSuffix(strings.TrimSpace(strings.SplitN(stdout, "\n", 2)[0]), "CLIENTS") {
		t.Errorf("access without a registry shows clients:\n%s", stdout)
	}
}

// Mistakes get a message and exit 2 (the command line) or 1 (the files).
func TestAccessMistakes(t *testing.T) {
	t.Parallel()
	registry := testRegistry(t)
	foreign := filepath.Join(t.TempDir(), "foreign.yaml")
	if err := os.WriteFile(foreign, []byte("clients:\n  - id: a\n    secret_hash: x\n    grants: [LIC.FLY]\n  - id: b\n    secret_hash: x\n    grants: [ORD.READ, NOPE.READ]\n  - id: c\n    secret_hash: x\n    grants: [ORD.READ]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--client", "reader"}, 2, "portcullis access: --client needs --registry FILE, such as .portcullis/clients.yaml\n"},
		{[]string{"--method", "/a.B/C", "--client", "reader", "--registry", registry}, 2, "portcullis access: give at most one of --method, --service, --permission and --client\n"},
		{[]string{"--format", "yaml"}, 2, `portcullis access: unknown format "yaml" (want table, json or markdown)` + "\n"},
		{[]string{"--method", "/example.orders.v1.OrdersService/Nope"}, 1, `portcullis access: method "/example.orders.v1.OrdersService/Nope" is not in the catalog` + "\n"},
		{[]string{"--service", "example.Nope"}, 1, `portcullis access: service "example.Nope" is not in the catalog` + "\n"},
		{[]string{"--permission", "LIC.FLY"}, 1, `portcullis access: permission "LIC.FLY" is not in the catalog` + "\n"},
		{[]string{"--client", "nobody", "--registry", registry}, 1, `portcullis access: client "nobody" is not in the registry ` + registry + "\n"},
		{[]string{"--registry", registry + ".missing"}, 1, "portcullis access: registry " + registry + ".missing does not exist\n"},
		{[]string{"--registry", foreign}, 1, "portcullis access: registry " + foreign + " does not match the catalog, and the issuer would refuse it:\n" +
			`  client "a": grants unknown permission "LIC.FLY": not in the catalog` + "\n" +
			`  client "b": grants unknown permission "NOPE.READ": not in the catalog` + "\n"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"access"}, tc.args...)...)
		if code != tc.code || stderr != tc.stderr || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q", tc.args, code, stdout, stderr, tc.code, tc.stderr)
		}
	}
}

// When no client can call a method or holds a permission, the answer says
// so.
func TestAccessNobody(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	registry := filepath.Join(t.TempDir(), "clients.yaml")
	if _, err := issuer.AddClient(registry, cat, issuer.Client{ID: "idle"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "/example.orders.v1.OrdersService/GetOrder"}, `METHOD      /example.orders.v1.OrdersService/GetOrder
ACCESS      token
REQUIRES    ORD.READ (1)
MASKS       ORD=1
RATE LIMIT  100/1m0s burst 20

No client of the registry can call it.

CANNOT CALL  TIER  MISSING
idle         -     ORD.READ
`},
		{[]string{"--permission", "ORD.READ", "--format", "markdown"}, "### Permission `ORD.READ`\n\nMask `ORD=1`: Read orders\n\n" +
			"| Required by | Requires |\n|---|---|\n" +
			"| `/example.orders.v1.OrdersService/GetOrder` | ORD.READ (1) |\n" +
			"| `/example.orders.v1.OrdersService/SyncOrders` | LIC.READ_ORDERS (2), ORD.READ (1), ORD.WRITE (2) |\n\n" +
			"No client of the registry holds it.\n"},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"access", "--registry", registry}, tc.args...)...)
		if code != 0 || stdout != tc.want {
			t.Errorf("%v: exit %d %s\ngot:\n%s\nwant:\n%s", tc.args, code, stderr, stdout, tc.want)
		}
	}
}
