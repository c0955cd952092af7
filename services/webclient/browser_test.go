package webclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// browserTools finds node, playwright-core and Chromium. Without them the
// test skips, except under CI=true, where it fails.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	chromium = os.Getenv("PORTCULLIS_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium, or set PORTCULLIS_CHROMIUM)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "node_modules/playwright-core (npm ci in services/webclient)")
	}
	if len(missing) > 0 {
		msg := "the browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, chromium
}

// browserReport is what testdata/browser.mjs saw.
type browserReport struct {
	Steps      []browserStep `json:"steps"`
	Requests   []struct{ Origin, Method, URL, ContentType string }
	PageErrors []string `json:"pageErrors"`
}

type browserStep struct {
	Origin, Client, Step, Transport string
	State, Text                     string
	Messages                        []string
}

func (s browserStep) String() string {
	return strings.Join([]string{s.Origin, s.Client, s.Step, s.Transport}, " ")
}

// runBrowser runs testdata/browser.mjs against the stack.
func runBrowser(t *testing.T, node, chromium string, s *browserStack) browserReport {
	t.Helper()
	var rep browserReport
	runScript(t, node, chromium, "browser.mjs", map[string]any{
		"page": s.page, "refusedPage": s.refusedPage, "gateway": s.gateway, "clients": s.secrets,
	}, &rep)
	return rep
}

// runScript runs the playwright script testdata/name in node, with arg
// and the browser's settings as its JSON argument, and decodes the report
// it prints into rep.
func runScript(t *testing.T, node, chromium, name string, arg map[string]any, rep any) {
	t.Helper()
	arg["chromium"], arg["userDataDir"], arg["screenshots"] = chromium, t.TempDir(), t.ArtifactDir()
	b, err := json.Marshal(arg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", name), string(b))
	// On SIGTERM, playwright closes the browser before it exits.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	t.Logf("%s took %v; screenshots in %s", name, time.Since(start).Round(time.Millisecond), t.ArtifactDir())
	if err := json.Unmarshal(stdout.Bytes(), rep); err != nil {
		t.Fatalf("%s printed no report: %v\n%s\n%s", name, err, stdout.String(), stderr.String())
	}
}

func TestBrowserOnAnotherOrigin(t *testing.T) {
	t.Parallel()
	node, chromium := browserTools(t)
	rep := runBrowser(t, node, chromium, startBrowserStack(t))

	const (
		requirements  = "3 licences: Food Facility Health Permit, On-Sale Beer and Wine Licence, Seller's Permit"
		jurisdictions = "DE-BE Berlin, GB-LND London, US-CA California, US-NY New York"
		lo1           = "lo-0001 us-ca-food-facility for biz-acme: GRANTED, created by seed"
		lo2           = "lo-0002 us-ca-abc-41 for biz-acme: FILED, created by seed"
		lo3           = "lo-0003 us-ca-seller for biz-acme: RECEIVED, created by operator"
		lo4           = "lo-0004 us-ca-seller for biz-acme: RECEIVED, created by operator"
		denied        = "PermissionDenied"
		reason        = "ErrorInfo reason PERMISSION_MISSING"
	)
	via := map[string]string{"connect-post": "Connect (POST)", "connect-get": "Connect (GET)", "grpc-web": "gRPC-Web"}
	type want struct {
		step     browserStep // Origin, Client, Step, Transport, State
		contains []string
		messages []string
	}
	step := func(origin, client, name, transport, state string) browserStep {
		return browserStep{Origin: origin, Client: client, Step: name, Transport: transport, State: state}
	}
	var wants []want
	add := func(s browserStep, messages []string, contains ...string) {
		if s.Transport != "" && s.Step != "WatchLicenceOrders" && s.Step != "StopWatching" {
			who := "as " + s.Client
			if s.Client == "anonymous" {
				who = "no token"
			}
			contains = append([]string{via[s.Transport] + ", " + who}, contains...)
		}
		wants = append(wants, want{s, contains, messages})
	}

	add(step("allowed", "reader", "token", "", "ok"), nil, "token for reader", "holds LIC.READ_REQUIREMENTS, ORD.READ")
	for _, tr := range []string{"connect-post", "connect-get", "grpc-web"} {
		add(step("allowed", "reader", "ListRequirements", tr, "ok"), nil, "✓", requirements)
		add(step("allowed", "reader", "ListJurisdictions", tr, "ok"), nil, "✓", jurisdictions)
	}
	for _, tr := range []string{"connect-post", "grpc-web"} {
		add(step("allowed", "reader", "CreateLicenceOrder", tr, "error"), nil, "✗", denied, reason, "missing: LIC.READ_ORDERS, LIC.WRITE_ORDERS")
		add(step("allowed", "reader", "GetLicenceOrder", tr, "error"), nil, "✗", denied, reason, "missing: LIC.READ_ORDERS")
		add(step("allowed", "reader", "WatchLicenceOrders", tr, "error"), []string{}, denied, reason, "missing: LIC.READ_ORDERS")
	}
	add(step("allowed", "clerk", "token", "", "ok"), nil, "token for clerk", "holds ORD.READ")
	for _, tr := range []string{"connect-post", "connect-get", "grpc-web"} {
		add(step("allowed", "clerk", "ListRequirements", tr, "error"), nil, "✗", denied, reason, "missing: LIC.READ_REQUIREMENTS")
	}
	add(step("allowed", "operator", "token", "", "ok"), nil, "token for operator", "holds LIC.READ_REQUIREMENTS, LIC.READ_ORDERS, LIC.WRITE_ORDERS, ORD.READ, ORD.WRITE")
	add(step("allowed", "operator", "WatchLicenceOrders", "connect-post", "open"), []string{lo1, lo2}, "open over Connect (POST): 2 messages")
	add(step("allowed", "operator", "CreateLicenceOrder", "connect-post", "ok"), nil, "✓", "created "+lo3)
	add(step("allowed", "operator", "WatchLicenceOrders", "connect-post", "open"), []string{lo1, lo2, lo3}, "3 messages")
	add(step("allowed", "operator", "StopWatching", "connect-post", "stopped"), []string{lo1, lo2, lo3}, "stopped after 3 messages")
	add(step("allowed", "operator", "WatchLicenceOrders", "grpc-web", "open"), []string{lo1, lo2, lo3}, "open over gRPC-Web: 3 messages")
	add(step("allowed", "operator", "CreateLicenceOrder", "grpc-web", "ok"), nil, "✓", "created "+lo4)
	add(step("allowed", "operator", "WatchLicenceOrders", "grpc-web", "open"), []string{lo1, lo2, lo3, lo4}, "4 messages")
	add(step("allowed", "operator", "GetLicenceOrder", "grpc-web", "ok"), nil, "✓", lo1)
	add(step("allowed", "operator", "StopWatching", "grpc-web", "stopped"), []string{lo1, lo2, lo3, lo4}, "stopped after 4 messages")
	// From an origin the issuer and the gateway do not allow, the browser
	// lets the page read no answer.
	add(step("refused", "reader", "token", "", "error"), nil, "could not reach", "Failed to fetch")
	for _, tr := range []string{"connect-post", "connect-get", "grpc-web"} {
		add(step("refused", "anonymous", "ListJurisdictions", tr, "error"), nil, "✗", "Failed to fetch", "its CORS settings do not allow this origin")
	}

	if len(rep.Steps) != len(wants) {
		t.Fatalf("browser.mjs reported %d steps, want %d: %+v", len(rep.Steps), len(wants), rep.Steps)
	}
	for i, w := range wants {
		got := rep.Steps[i]
		t.Run(fmt.Sprintf("%02d %s", i, w.step), func(t *testing.T) {
			if got.String() != w.step.String() {
				t.Fatalf("step is %q, want %q", got, w.step)
			}
			t.Logf("%s: %s %q", got.State, got.Text, got.Messages)
			if got.State != w.step.State {
				t.Errorf("state %q, want %q; the page shows %q", got.State, w.step.State, got.Text)
			}
			for _, s := range w.contains {
				if !strings.Contains(got.Text, s) {
					t.Errorf("the page shows %q, want it to contain %q", got.Text, s)
				}
			}
			if w.messages != nil && strings.Join(got.Messages, "\n") != strings.Join(w.messages, "\n") {
				t.Errorf("the stream listed\n%s\nwant\n%s", strings.Join(got.Messages, "\n"), strings.Join(w.messages, "\n"))
			}
			if got.Step == "token" && got.State == "ok" && !shortToken.MatchString(got.Text) {
				t.Errorf("the page shows %q, want the token's first 12 characters only", got.Text)
			}
		})
	}

	// The page sent each protocol's requests: Connect with JSON by POST,
	// by GET for the methods declared side-effect free only, and gRPC-Web.
	const svc = "/example.licensing.v1.LicensingService/"
	seen := map[string]bool{}
	for _, r := range rep.Requests {
		proc := r.URL[strings.Index(r.URL, svc)+len(svc):]
		proc, query, _ := strings.Cut(proc, "?")
		key := r.Method + " " + proc + " " + r.ContentType
		if r.Method == http.MethodGet {
			key = r.Method + " " + proc
			if !strings.Contains(query, "connect=v1") || !strings.Contains(query, "encoding=json") {
				t.Errorf("GET %s has query %q, want connect=v1 and encoding=json", proc, query)
			}
		}
		seen[key] = true
	}
	for _, key := range []string{
		"POST ListRequirements application/json", "GET ListRequirements", "POST ListRequirements application/grpc-web+proto",
		"GET ListJurisdictions", "POST CreateLicenceOrder application/json", "POST CreateLicenceOrder application/grpc-web+proto",
		"POST WatchLicenceOrders application/connect+json", "POST WatchLicenceOrders application/grpc-web+proto",
	} {
		if !seen[key] {
			t.Errorf("the page sent no %s request; it sent %v", key, seen)
		}
	}
	for _, never := range []string{"GET CreateLicenceOrder", "GET GetLicenceOrder", "GET WatchLicenceOrders"} {
		if seen[never] {
			t.Errorf("the page sent %s, which has side effects or streams", never)
		}
	}
	if len(rep.PageErrors) > 0 {
		t.Errorf("uncaught errors in the page:\n%s", strings.Join(rep.PageErrors, "\n"))
	}
}

// shortToken is how the page shows a token: its first 12 characters.
var shortToken = regexp.MustCompile(`\(eyJ[\w-]{9}…, \d+s\)`)
