// Package evolution_test checks that the example backends survive a new
// RPC in their protos: regenerated, they still compile and refuse it as
// unimplemented, while the gateway enforces what it declares.
package evolution_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/gateway/config"
	_ "github.com/portcullis/portcullis/gen/example/licensing/v1"
	_ "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/internal/prototest"
	"github.com/portcullis/portcullis/services/issuer"
	"github.com/portcullis/portcullis/services/issuer/issuertest"
	"github.com/portcullis/portcullis/services/orders"
)

// An example service, and the RPC a team adds to it.
type example struct {
	proto    string // under proto/
	service  string // its short name
	pkg      string // the Go package of the backend, under services/
	client   string // the generated client constructor, in pkg+"v1connect"
	requires string // what Probe requires
}

var examples = []example{
	{"example/orders/v1/orders.proto", "OrdersService", "orders", "NewOrdersServiceClient", "ORD.WRITE"},
	{"example/licensing/v1/licensing.proto", "LicensingService", "licensing", "NewLicensingServiceClient", "LIC.WRITE_ORDERS"},
}

// source returns the example's proto source.
func (e example) source(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(prototest.ProtoDir, filepath.FromSlash(e.proto)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// withProbe returns the example's proto source with one more RPC, Probe,
// and its messages.
func (e example) withProbe(t *testing.T) string {
	t.Helper()
	src := e.source(t)
	start := strings.Index(src, "\nservice "+e.service+" {\n")
	end := strings.Index(src[start+1:], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatalf("%s: no service %s", e.proto, e.service)
	}
	end += start + 1
	rpc := fmt.Sprintf(`

  // Probe is new: the backend does not implement it yet.
  rpc Probe(ProbeRequest) returns (ProbeResponse) {
    option (gateway.v1.access) = {requires: [%q]};
  }`, e.requires)
	return src[:end] + rpc + src[end:] + `
// ProbeRequest is the request of Probe.
message ProbeRequest {}

// ProbeResponse is the response of Probe.
message ProbeResponse {}
`
}

// moduleRoot is the repository's root directory.
var moduleRoot = filepath.Dir(prototest.ProtoDir)

// generate runs the project's code generators (those of buf.gen.yaml) on
// the source and returns the files they write, by path under gen/.
func generate(t *testing.T, path, source string) map[string]string {
	t.Helper()
	fds := prototest.Compile(t, map[string]string{path: source})
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: []string{path}, Parameter: proto.String("paths=source_relative")}
	for _, fd := range slices.Backward(fds) { // imports first
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	in, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, plugin := range []string{"protoc-gen-go", "protoc-gen-connect-go"} {
		cmd := exec.Command("go", "tool", "-modfile=tools/go.mod", plugin)
		cmd.Dir, cmd.Stdin, cmd.Stderr = moduleRoot, bytes.NewReader(in), os.Stderr
		data, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", plugin, err)
		}
		res := new(pluginpb.CodeGeneratorResponse)
		if err := proto.Unmarshal(data, res); err != nil {
			t.Fatal(err)
		}
		if res.Error != nil {
			t.Fatalf("%s: %s", plugin, res.GetError())
		}
		for _, f := range res.GetFile() {
			out[f.GetName()] = f.GetContent()
		}
	}
	return out
}

// probeTest is a test of the backend's package, built with the regenerated
// code: the backend answers Probe through its embedded Unimplemented
// handler.
const probeTest = `package %[1]s_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	%[1]sv1 "github.com/portcullis/portcullis/gen/example/%[1]s/v1"
	"github.com/portcullis/portcullis/gen/example/%[1]s/v1/%[1]sv1connect"
	"github.com/portcullis/portcullis/services/%[1]s"
)

func TestProbeIsUnimplemented(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(%[1]s.New().Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := %[1]sv1connect.%[2]s(srv.Client(), srv.URL)
	_, err := client.Probe(context.Background(), connect.NewRequest(&%[1]sv1.ProbeRequest{}))
	const want = "unimplemented: example.%[1]s.v1.%[3]s.Probe is not implemented"
	if connect.CodeOf(err) != connect.CodeUnimplemented || err.Error() != want {
		t.Fatalf("Probe = %%v, want %%q", err, want)
	}
}
`

// TestBackendsCompileWithANewRPC adds an RPC to each example proto,
// regenerates the Go code with the project's generators, and tests each
// backend's package with the regenerated code in place of the checked-in
// code (go test -overlay), as `make generate run` would build it: the
// backend still compiles, and answers the new RPC with Unimplemented.
func TestBackendsCompileWithANewRPC(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the backends with regenerated code")
	}
	dir := t.TempDir()
	replace := map[string]string{}
	overlay := func(path, content string) {
		file := filepath.Join(dir, fmt.Sprintf("%d.go", len(replace)))
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		replace[filepath.Join(moduleRoot, filepath.FromSlash(path))] = file
	}
	var packages []string
	for _, e := range examples {
		for name, content := range generate(t, e.proto, e.withProbe(t)) {
			overlay("gen/"+name, content)
		}
		overlay("services/"+e.pkg+"/probe_test.go", fmt.Sprintf(probeTest, e.pkg, e.client, e.service))
		packages = append(packages, "./services/"+e.pkg)
	}
	data, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		t.Fatal(err)
	}
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"test", "-overlay", overlayFile, "-count=1", "-run", "^TestProbeIsUnimplemented$", "-v"}, packages...)...)
	cmd.Dir = moduleRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test with the regenerated code: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "--- PASS: TestProbeIsUnimplemented"); n != len(examples) {
		t.Errorf("%d backends answered Probe with Unimplemented, want %d:\n%s", n, len(examples), out)
	}
}

// TestGatewayEnforcesANewRPC serves an image of the orders proto with Probe
// added in front of the orders backend as it is compiled: the gateway
// enforces what Probe declares, with no change to the gateway, and the
// backend refuses it as unimplemented.
func TestGatewayEnforcesANewRPC(t *testing.T) {
	t.Parallel()
	e, lic := examples[0], examples[1]
	image := prototest.WriteImage(t, map[string]string{e.proto: e.withProbe(t), lic.proto: lic.source(t)})
	files, err := catalog.LoadImage(image)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(files)
	if err != nil {
		t.Fatal(err)
	}
	const procedure = "/example.orders.v1.OrdersService/Probe"
	if m, ok := cat.Method(procedure); !ok || fmt.Sprint(m.Requires) != "[ORD.WRITE]" {
		t.Fatalf("catalog: Probe = %+v, %v", m, ok)
	}

	compiled, err := catalog.New(protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	iss := issuertest.Start(t, compiled)
	_, backend := orders.New().Handler()
	cfg, err := config.Parse("probe.yaml", fmt.Appendf(nil, `
descriptors: {images: [%q]}
issuers:
  - {issuer: %q, audiences: [%q], discovery: true}
routes:
  - {service: example.orders.v1.OrdersService, backend: %q}
`, image, iss.URL, issuertest.Audience, h2ctest.Serve(t, backend)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	url := h2ctest.Serve(t, gw.Handler())
	for deadline := time.Now().Add(10 * time.Second); gw.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", gw.Ready())
		}
	}

	reader := iss.AddClient(t, issuer.Client{ID: "reader", Grants: []string{"ORD.READ"}})
	writer := iss.AddClient(t, issuer.Client{ID: "writer", Grants: []string{"ORD.WRITE"}})
	client := connect.NewClient[emptypb.Empty, emptypb.Empty](h2ctest.Client(t), url+procedure, connect.WithGRPC())
	for _, tc := range []struct {
		name    string
		token   string
		code    connect.Code
		message string
	}{
		{"no token", "", connect.CodeUnauthenticated, ""},
		{"without ORD.WRITE", iss.Token(t, "reader", reader), connect.CodePermissionDenied, "missing ORD.WRITE"},
		{"with ORD.WRITE", iss.Token(t, "writer", writer), connect.CodeUnimplemented, ""},
	} {
		req := connect.NewRequest(&emptypb.Empty{})
		if tc.token != "" {
			req.Header().Set("Authorization", "Bearer "+tc.token)
		}
		_, err := client.CallUnary(context.Background(), req)
		if connect.CodeOf(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.message) {
			t.Errorf("%s: Probe = %v, want %s %q", tc.name, err, tc.code, tc.message)
		}
	}
}
