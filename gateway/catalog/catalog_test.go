package catalog_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/portcullis/portcullis/gateway/catalog"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
	_ "github.com/portcullis/portcullis/gen/portcullis/admin/v1"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/internal/rulecases"
)

// header, domains and service build the test protos: see rulecases.
const (
	header  = rulecases.Header
	domains = rulecases.Domains
)

func service(methods string) string { return rulecases.Service(methods) }

func TestExampleRequirements(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		public    bool
		requires  string // references, comma-separated
		need      string // DOMAIN=mask, space-separated
		rateLimit string
		messages  string
		maxAge    time.Duration
		highValue bool
	}
	const lic, ord, adm = "/example.licensing.v1.LicensingService/", "/example.orders.v1.OrdersService/", "/portcullis.admin.v1.ClientAdminService/"
	wants := map[string]want{
		lic + "ListJurisdictions":  {public: true, rateLimit: "60/1m0s/10"},
		lic + "ListRequirements":   {requires: "LIC.READ_REQUIREMENTS", need: "LIC=1"},
		lic + "GetLicenceOrder":    {requires: "LIC.READ_ORDERS", need: "LIC=2"},
		lic + "CreateLicenceOrder": {requires: "LIC.READ_ORDERS,LIC.WRITE_ORDERS", need: "LIC=6", rateLimit: "10/1s/5", maxAge: 5 * time.Minute},
		lic + "WatchLicenceOrders": {requires: "LIC.READ_ORDERS", need: "LIC=2"},
		ord + "GetOrder":           {requires: "ORD.READ", need: "ORD=1", rateLimit: "100/1m0s/20"},
		ord + "PlaceOrder":         {requires: "LIC.READ_REQUIREMENTS,ORD.WRITE", need: "LIC=1 ORD=2", rateLimit: "100/1m0s/20", highValue: true},
		ord + "ImportOrders":       {requires: "LIC.WRITE_ORDERS,ORD.WRITE", need: "LIC=4 ORD=2", rateLimit: "100/1m0s/20", messages: "1000/1s/100"},
		ord + "SyncOrders":         {requires: "LIC.READ_ORDERS,ORD.READ,ORD.WRITE", need: "LIC=2 ORD=3", rateLimit: "100/1m0s/20"},
		adm + "ListClients":        {requires: "PORTCULLIS.READ_CLIENTS", need: "PORTCULLIS=1"},
		adm + "ListPermissions":    {requires: "PORTCULLIS.READ_CLIENTS", need: "PORTCULLIS=1"},
		adm + "CreateClient":       {requires: "PORTCULLIS.MANAGE_CLIENTS", need: "PORTCULLIS=2"},
		adm + "UpdateGrants":       {requires: "PORTCULLIS.MANAGE_CLIENTS", need: "PORTCULLIS=2"},
		adm + "RotateSecret":       {requires: "PORTCULLIS.MANAGE_CLIENTS", need: "PORTCULLIS=2"},
		adm + "RevokeClient":       {requires: "PORTCULLIS.MANAGE_CLIENTS", need: "PORTCULLIS=2"},
	}
	if got := len(cat.Methods()); got != len(wants) {
		t.Errorf("catalog has %d methods, want %d", got, len(wants))
	}
	for procedure, w := range wants {
		m, ok := cat.Method(procedure)
		if !ok {
			t.Errorf("%s: not in catalog", procedure)
			continue
		}
		got := want{public: m.Public, rateLimit: rate(m.RateLimit), messages: rate(m.StreamMessageLimit), maxAge: m.MaxTokenAge, highValue: m.HighValue}
		var refs, need []string
		for _, p := range m.Requires {
			refs = append(refs, p.String())
		}
		for _, n := range m.Need {
			need = append(need, fmt.Sprintf("%s=%d", n.Domain, n.Mask))
		}
		got.requires, got.need = strings.Join(refs, ","), strings.Join(need, " ")
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", procedure, got, w)
		}
		if string(m.Descriptor.FullName()) != strings.ReplaceAll(strings.TrimPrefix(procedure, "/"), "/", ".") {
			t.Errorf("%s: descriptor %s", procedure, m.Descriptor.FullName())
		}
	}
	lic1, ok := cat.Permission("LIC.WRITE_ORDERS")
	if !ok || lic1.Mask != 4 || lic1.Description != "Create and change licence orders" {
		t.Errorf("LIC.WRITE_ORDERS = %+v, %v", lic1, ok)
	}
	if d, ok := cat.Domain("ORD"); !ok || d.Description != "Customer orders" || len(d.Permissions) != 2 {
		t.Errorf("domain ORD = %+v, %v", d, ok)
	}
}

func rate(rl *catalog.RateLimit) string {
	if rl == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s/%d", rl.Requests, rl.Period, rl.Burst)
}

func TestAllowsIsAnAND(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Method("/example.orders.v1.OrdersService/SyncOrders") // LIC=2 ORD=3
	// Every combination of the bits that matter, plus noise bits that do not.
	for lic := range uint64(8) {
		for ord := range uint64(4) {
			masks := map[string]uint64{"LIC": lic | 1<<40, "ORD": ord | 1<<8, "XYZ": 7}
			want := lic&2 != 0 && ord == 3
			if got := m.Allows(masks); got != want {
				t.Errorf("Allows(LIC=%d ORD=%d) = %v, want %v", lic, ord, got, want)
			}
			var missing []string
			for _, p := range m.Missing(masks) {
				missing = append(missing, p.String())
			}
			if (len(missing) == 0) != want {
				t.Errorf("Missing(LIC=%d ORD=%d) = %v, but Allows = %v", lic, ord, missing, want)
			}
		}
	}
	if got := m.Missing(nil); len(got) != 3 {
		t.Errorf("Missing(nil) = %v, want all three", got)
	}
	if m.Allows(nil) {
		t.Error("Allows(nil) = true")
	}
}

func TestMasksAndGranted(t *testing.T) {
	t.Parallel()
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	masks, err := cat.Masks([]string{"LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "LIC.READ_ORDERS"})
	if err != nil {
		t.Fatal(err)
	}
	if len(masks) != 2 || masks["LIC"] != 6 || masks["ORD"] != 1 {
		t.Errorf("Masks = %v, want LIC=6 ORD=1", masks)
	}
	var names []string
	for _, p := range cat.Granted(map[string]uint64{"LIC": 5, "ORD": 1 << 30}) {
		names = append(names, p.String())
	}
	if got := strings.Join(names, " "); got != "LIC.READ_REQUIREMENTS LIC.WRITE_ORDERS" {
		t.Errorf("Granted = %q", got)
	}
	_, err = cat.Masks([]string{"LIC.READ_ORDERS", "LIC.FLY", "NOPE.READ", "garbage"})
	if err == nil || err.Error() != `unknown permission "LIC.FLY", "NOPE.READ", "garbage": not in the catalog` {
		t.Errorf("Masks(unknown) error = %v", err)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	loaders := map[string]func(t testing.TB, sources map[string]string) (*protoregistry.Files, error){
		"linked": func(t testing.TB, sources map[string]string) (*protoregistry.Files, error) {
			return prototest.Files(t, sources), nil
		},
		"image file": func(t testing.TB, sources map[string]string) (*protoregistry.Files, error) {
			return catalog.LoadImage(prototest.WriteImage(t, sources))
		},
	}
	for _, tc := range rulecases.Invalid {
		for loader, load := range loaders {
			t.Run(tc.Name+"/"+loader, func(t *testing.T) {
				t.Parallel()
				files, err := load(t, map[string]string{rulecases.File: tc.Source})
				if err != nil {
					t.Fatal(err)
				}
				cat, err := catalog.New(files)
				var invalid *catalog.ValidationError
				if !errors.As(err, &invalid) {
					t.Fatalf("New = %v, %v; want a *ValidationError", cat, err)
				}
				if cat != nil {
					t.Error("New returned a catalog along with its error")
				}
				if len(invalid.Problems) != len(tc.Want) {
					t.Errorf("got %d problems, want %d:\n%v", len(invalid.Problems), len(tc.Want), err)
				}
				for _, w := range tc.Want {
					found := slices.ContainsFunc(invalid.Problems, func(p catalog.Problem) bool {
						return p.File == rulecases.File && p.Element == w.Element && p.Rule == w.Rule && strings.Contains(p.Message, w.Message)
					})
					if !found {
						t.Errorf("missing problem %s: %s: %s: %q\ngot:\n%v", rulecases.File, w.Element, w.Rule, w.Message, err)
					}
				}
			})
		}
	}
}

func TestValidDeclarations(t *testing.T) {
	t.Parallel()
	source := service(`
		option (gateway.v1.default_access) = {requires: ["ALP.READ"], rate_limit: {requests: 7, period: {seconds: 2}}};
		rpc Get(Req) returns (Req);
		rpc Put(stream Req) returns (Req) {
		  option (gateway.v1.access) = {requires: ["ALP.WRITE", "BET.USE", "ALP.READ", "ALP.WRITE"], stream_message_limit: {requests: 3, period: {seconds: 1}}};
		}
		rpc Ping(Req) returns (Req) { option (gateway.v1.access) = {public: true, rate_limit: {requests: 1, period: {seconds: 1}, burst: 9}}; }`)
	for _, loader := range []string{"linked", "image file", "image without imports"} {
		t.Run(loader, func(t *testing.T) {
			t.Parallel()
			sources := map[string]string{"test.proto": source}
			var files *protoregistry.Files
			var err error
			switch loader {
			case "linked":
				files = prototest.Files(t, sources)
			case "image file":
				files, err = catalog.LoadImage(prototest.WriteImage(t, sources))
			default:
				files, err = catalog.LoadImage(prototest.WriteImage(t, sources, "gateway/v1/options.proto", "google/protobuf/descriptor.proto", "google/protobuf/duration.proto"))
			}
			if err != nil {
				t.Fatal(err)
			}
			cat, err := catalog.New(files)
			if err != nil {
				t.Fatal(err)
			}
			get, _ := cat.Method("/test.v1.Svc/Get")
			put, _ := cat.Method("/test.v1.Svc/Put")
			ping, _ := cat.Method("/test.v1.Svc/Ping")
			if get == nil || put == nil || ping == nil {
				t.Fatalf("methods missing: %v", cat.Methods())
			}
			if got := fmt.Sprintf("%v %s", get.Need, rate(get.RateLimit)); got != "[{ALP 1}] 7/2s/1" {
				t.Errorf("Get: %s (the service default applies)", got)
			}
			if got := fmt.Sprintf("%v %s %s %d", put.Need, rate(put.RateLimit), rate(put.StreamMessageLimit), len(put.Requires)); got != "[{ALP 3} {BET 4503599627370496}] 7/2s/1 3/1s/1 3" {
				t.Errorf("Put: %s (own requirements, duplicates folded, inherited rate limit)", got)
			}
			if !ping.Public || len(ping.Need) != 0 || rate(ping.RateLimit) != "1/1s/9" {
				t.Errorf("Ping: public=%v need=%v rate=%s", ping.Public, ping.Need, rate(ping.RateLimit))
			}
			if got := len(cat.Domains()); got != 2 {
				t.Errorf("%d domains, want 2", got)
			}
		})
	}
}

func TestUngovernedFilesAreLeftOut(t *testing.T) {
	t.Parallel()
	files := prototest.Files(t, map[string]string{
		"test.proto":  service(`rpc Get(Req) returns (Req) { option (gateway.v1.access) = {public: true}; }`),
		"other.proto": "syntax = \"proto3\";\npackage other.v1;\nmessage M {}\nservice Plain { rpc Do(M) returns (M); }\n",
	})
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cat.Method("/other.v1.Plain/Do"); ok {
		t.Error("a service whose file does not import the vocabulary is in the catalog")
	}
	if len(cat.Services()) != 1 || cat.Services()[0].FullName() != "test.v1.Svc" {
		t.Errorf("Services = %v", cat.Services())
	}
}

func TestLoadImageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.binpb")
	if err := os.WriteFile(garbage, []byte("\xff\xff\xff not protobuf"), 0o600); err != nil {
		t.Fatal(err)
	}
	missingImport := prototest.WriteImage(t, map[string]string{
		"test.proto": header + `import "dep.proto"; message M { dep.v1.D d = 1; }`,
		"dep.proto":  "syntax = \"proto3\";\npackage dep.v1;\nmessage D {}\n",
	}, "dep.proto")
	for name, tc := range map[string]struct{ path, want string }{
		"no such file":   {filepath.Join(dir, "nope.binpb"), "catalog: read image: open "},
		"not an image":   {garbage, "catalog: decode image " + garbage},
		"missing import": {missingImport, `test.proto: import "dep.proto" is neither in the image nor compiled in`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files, err := catalog.LoadImage(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadImage = %v, %v; want error containing %q", files, err, tc.want)
			}
		})
	}
}

func TestBufImage(t *testing.T) {
	t.Parallel()
	// gen/portcullis.binpb is built by `buf build` in `make generate`.
	files, err := catalog.LoadImage(filepath.Join("..", "..", "gen", "portcullis.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	fromImage, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromImage.Methods()) != len(compiled.Methods()) {
		t.Fatalf("image has %d methods, compiled-in %d", len(fromImage.Methods()), len(compiled.Methods()))
	}
	for i, m := range fromImage.Methods() {
		c := compiled.Methods()[i]
		if m.Procedure != c.Procedure || fmt.Sprint(m.Need) != fmt.Sprint(c.Need) || m.Public != c.Public ||
			rate(m.RateLimit) != rate(c.RateLimit) || rate(m.StreamMessageLimit) != rate(c.StreamMessageLimit) {
			t.Errorf("image %s %v differs from compiled-in %s %v", m.Procedure, m.Need, c.Procedure, c.Need)
		}
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	procedure := "/example.orders.v1.OrdersService/SyncOrders"
	masks := map[string]uint64{"LIC": 3, "ORD": 3}
	allocs := testing.AllocsPerRun(1000, func() {
		m, ok := cat.Method(procedure)
		if !ok || !m.Allows(masks) {
			t.Fatal("lookup failed")
		}
	})
	if allocs != 0 {
		t.Errorf("lookup and check allocate %v times per call", allocs)
	}
}

func BenchmarkMethod(b *testing.B) {
	cat, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		b.Fatal(err)
	}
	procedure := "/example.orders.v1.OrdersService/SyncOrders"
	masks := map[string]uint64{"LIC": 3, "ORD": 3}
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := cat.Method(procedure); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("lookup+allows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m, ok := cat.Method(procedure); !ok || !m.Allows(masks) {
				b.Fatal("denied")
			}
		}
	})
}
