package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/freeport"
	"github.com/portcullis/portcullis/services/issuer"
)

// TestDevTour runs `portcullis dev` at the repository's root, as `make
// run` does, waits for it to have built the tour's tools, and then runs
// every command of the tour it prints, exactly as printed, in one shell,
// checking what each shows and that each call logs a line.
func TestDevTour(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the tour needs curl")
	}
	t.Chdir("../..") // the tour's commands run at the repository's root
	dev := startDev(t, t.TempDir())

	want := tour(dev.addrs, map[string]string{}, "tools/go.mod")
	if len(dev.commands) != len(want) {
		t.Fatalf("printed %d commands, want %d:\n%s", len(dev.commands), len(want), dev.tour)
	}
	ready := dev.waitFor(t, regexp.MustCompile(`^The tour's buf and grpcurl are ready|^Could not build`), 10*time.Minute)
	if !strings.HasPrefix(ready, "The tour's buf and grpcurl are ready") {
		t.Fatalf("building the tour's tools: %s\n%s", ready, dev.rest())
	}

	var script strings.Builder
	for i, c := range dev.commands {
		fmt.Fprintf(&script, "echo '@@step %d'\n%s\necho\n", i, c)
	}
	shell, cancelShell := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancelShell()
	output, err := exec.CommandContext(shell, "bash", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("tour: %v\n%s", err, output)
	}
	steps := strings.Split(string(output), "@@step ")[1:]
	if len(steps) != len(want) {
		t.Fatalf("tour printed %d steps:\n%s", len(steps), output)
	}
	for i, step := range steps {
		if !strings.Contains(step, want[i].expect) {
			t.Errorf("step %d (%s)\n%s\nprinted:\n%s\nwant it to contain %q", i, want[i].comment, dev.commands[i], step, want[i].expect)
		}
	}

	stderr := dev.stop(t)
	for _, line := range []string{
		`token status=200 duration=\S+ client_id=reader`,
		`call /example.licensing.v1.LicensingService/ListRequirements connect ok allowed \S+s client_id=reader tier=free token_id=\S+$`,
		`call /example.licensing.v1.LicensingService/CreateLicenceOrder connect permission_denied denied \S+s client_id=reader missing_permissions=LIC.READ_ORDERS,LIC.WRITE_ORDERS$`,
		`call /example.licensing.v1.LicensingService/ListJurisdictions connect ok allowed \S+s$`,
		`call /example.orders.v1.OrdersService/GetOrder grpc ok allowed \S+s client_id=reader tier=free token_id=\S+$`,
		`call /example.orders.v1.OrdersService/PlaceOrder grpc permission_denied denied \S+s client_id=reader missing_permissions=ORD.WRITE$`,
		`call /example.orders.v1.OrdersService/PlaceOrder grpc ok allowed \S+s client_id=operator tier=pro token_id=\S+$`,
		`call /example.orders.v1.OrdersService/GetOrder connect unauthenticated unauthenticated \S+s error="missing bearer token"$`,
	} {
		if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d ` + line).MatchString(stderr) {
			t.Errorf("no log line matching %q in:\n%s", line, stderr)
		}
	}
	for _, secret := range dev.secrets {
		if strings.Contains(stderr, secret) {
			t.Errorf("the log shows a client secret:\n%s", stderr)
		}
	}
}

// TestDevKeepsSecrets: the demo clients keep their secrets from one start
// to the next, in the state folder, unless the registry no longer accepts
// them, in which case they get new ones that work.
func TestDevKeepsSecrets(t *testing.T) {
	dir := t.TempDir()
	first := startDev(t, dir, "--build-tools=false")
	first.stop(t)
	secretsFile := filepath.Join(dir, demoSecretsName)
	if !strings.Contains(first.tour, "secrets kept in "+secretsFile) {
		t.Errorf("the tour does not say where the secrets are kept:\n%s", first.tour)
	}
	if fi, err := os.Stat(secretsFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v, %v; want mode 0600", fi, err)
	}

	second := startDev(t, dir, "--build-tools=false")
	second.stop(t)
	for _, c := range demoClients {
		if first.secrets[c.id] == "" || second.secrets[c.id] != first.secrets[c.id] {
			t.Errorf("client %s: secret %q, then %q after a restart; want it kept", c.id, first.secrets[c.id], second.secrets[c.id])
		}
	}

	// Someone registers "reader" again behind dev's back: its kept secret
	// no longer works, so dev gives it a new one.
	registry := filepath.Join(dir, "clients.yaml")
	if err := issuer.RevokeClient(registry, "reader"); err != nil {
		t.Fatal(err)
	}
	cat, err := loadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.AddClient(registry, cat, issuer.Client{ID: "reader", Grants: demoClients[0].grants, Tier: demoClients[0].tier}); err != nil {
		t.Fatal(err)
	}
	third := startDev(t, dir, "--build-tools=false")
	defer third.stop(t)
	if third.secrets["reader"] == first.secrets["reader"] {
		t.Error("reader kept a secret the registry no longer accepts")
	}
	if third.secrets["operator"] != first.secrets["operator"] {
		t.Error("operator's secret changed though the registry still accepts it")
	}
	for _, c := range demoClients {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+third.addrs.issuer+issuer.TokenPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.id, third.secrets[c.id])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("token for %s with the printed secret: %s", c.id, resp.Status)
		}
	}
}

// devRun is a running `portcullis dev`, started by startDev.
type devRun struct {
	addrs    devAddrs
	tour     string            // stdout up to "Press Ctrl-C to stop."
	commands []string          // the tour's commands
	secrets  map[string]string // client id -> printed secret
	lines    chan string       // stdout after the tour
	seen     []string
	cancel   context.CancelFunc
	done     chan int
	stderr   *lockedBuffer
	once     sync.Once
}

// startDev runs `portcullis dev` on free ports with the state folder dir
// and returns once it printed its tour.
func startDev(t *testing.T, dir string, args ...string) *devRun {
	t.Helper()
	d := &devRun{
		addrs: devAddrs{gateway: freeport.Addr(t), admin: freeport.Addr(t), issuer: freeport.Addr(t), licensing: freeport.Addr(t), orders: freeport.Addr(t), web: freeport.Addr(t)},
		lines: make(chan string, 100), done: make(chan int, 1), stderr: newLockedBuffer(), secrets: map[string]string{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	out, w := io.Pipe()
	args = append([]string{"dev", "--dir", dir, "--listen", d.addrs.gateway, "--admin", d.addrs.admin,
		"--issuer", d.addrs.issuer, "--licensing", d.addrs.licensing, "--orders", d.addrs.orders, "--web", d.addrs.web}, args...)
	go func() {
		d.done <- run(ctx, args, w, d.stderr)
		w.Close()
	}()
	t.Cleanup(func() { d.stop(t) })

	// Read the tour: blocks of "# comment" and one command line.
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	var tour strings.Builder
	var comment bool
	secret := regexp.MustCompile(`^  (\S+) +secret (\S+) `)
	for lines.Scan() {
		line := lines.Text()
		tour.WriteString(line + "\n")
		if line == "Press Ctrl-C to stop." {
			break
		}
		if m := secret.FindStringSubmatch(line); m != nil {
			d.secrets[m[1]] = m[2]
		}
		if comment && line != "" {
			d.commands = append(d.commands, line)
		}
		comment = strings.HasPrefix(line, "# ")
	}
	d.tour = tour.String()
	go func() {
		for lines.Scan() {
			d.lines <- lines.Text()
		}
		close(d.lines)
	}()
	if !strings.HasSuffix(d.tour, "Press Ctrl-C to stop.\n") {
		d.stop(t)
		t.Fatalf("dev printed no tour:\n%s\nstderr:\n%s", d.tour, d.stderr.String())
	}
	return d
}

// waitFor returns the first line after the tour that matches re.
func (d *devRun) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				t.Fatalf("dev stopped before printing a line matching %q:\n%s", re, d.rest())
			}
			d.seen = append(d.seen, line)
			if re.MatchString(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line matching %q within %s:\n%s", re, timeout, d.rest())
		}
	}
}

// rest returns the lines seen after the tour.
func (d *devRun) rest() string { return strings.Join(d.seen, "\n") }

// stop interrupts dev, checks that it exits 0, and returns its stderr.
func (d *devRun) stop(t *testing.T) string {
	t.Helper()
	d.once.Do(func() {
		d.cancel()
		go func() {
			for range d.lines {
			}
		}()
		select {
		case code := <-d.done:
			if code != 0 {
				t.Errorf("dev exited %d: %s", code, d.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop within 30s of an interrupt")
		}
	})
	return d.stderr.String()
}

// lockedBuffer is a buffer that one goroutine writes while another reads.
type lockedBuffer struct {
	syncWriter
	b strings.Builder
}

func newLockedBuffer() *lockedBuffer {
	b := new(lockedBuffer)
	b.w = &b.b
	return b
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
