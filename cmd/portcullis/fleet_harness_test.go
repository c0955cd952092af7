package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/freeport"
)

// fleetProcess is one portcullis process of a fleet test, which the test
// may kill as a crash would and start again with the same arguments. It
// is interrupted when the test ends, and killed if it has not exited 20s
// later.
type fleetProcess struct {
	t    *testing.T
	name string
	bin  string
	args []string
	// ready waits until the process serves, or fails the test.
	ready func(t *testing.T, p *fleetProcess)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // cmd's exit, once done is closed
	out  *lockedBuffer // stdout and stderr of every run
}

// startProcess starts bin with args, as name in messages, and waits until
// ready says it serves.
func startProcess(t *testing.T, bin, name string, ready func(*testing.T, *fleetProcess), args ...string) *fleetProcess {
	t.Helper()
	p := &fleetProcess{t: t, name: name, bin: bin, args: args, ready: ready, out: newLockedBuffer()}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *fleetProcess) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	p.ready(p.t, p)
}

// running reports whether the process started last is still running.
func (p *fleetProcess) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill ends the process with SIGKILL, as a crash would: it drains nothing.
func (p *fleetProcess) Kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts the killed process again with the same arguments, and
// waits until it serves.
func (p *fleetProcess) Restart() {
	p.t.Helper()
	p.Kill()
	p.start()
}

// stop interrupts the process and waits for it to drain and exit.
func (p *fleetProcess) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
		p.mu.Lock()
		err := p.err
		p.mu.Unlock()
		if err != nil && !p.t.Failed() {
			p.t.Errorf("%s exited with %v after an interrupt:\n%s", p.name, err, p.out.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		p.t.Errorf("%s did not exit within 20s of an interrupt", p.name)
	}
}

// listening returns a ready function that waits until addr accepts
// connections.
func listening(addr string) func(*testing.T, *fleetProcess) {
	return func(t *testing.T, p *fleetProcess) {
		t.Helper()
		waitUntil(t, p, 30*time.Second, func() bool {
			conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				_ = conn.Close()
			}
			return err == nil
		})
	}
}

// waitUntil polls ok every 20ms, failing the test with p's output if it
// does not hold within timeout.
func waitUntil(t *testing.T, p *fleetProcess, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if !p.running() {
			t.Fatalf("%s exited:\n%s", p.name, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v:\n%s", p.name, timeout, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fleetGateway is a gateway process with a configuration file of its own.
type fleetGateway struct {
	*fleetProcess
	// URL is where it takes calls; Admin is its admin listener, host:port.
	URL, Admin string
	// Config is its configuration file.
	Config string
}

// startGateway writes the configuration yaml (to which it adds listen and
// admin on free ports) to a file of its own in dir, starts "portcullis
// gateway" with it, and waits until /readyz answers 200.
func startGateway(t *testing.T, bin, dir, name, yaml string) *fleetGateway {
	t.Helper()
	listen, admin := freeport.Addr(t), freeport.Addr(t)
	g := &fleetGateway{URL: "http://" + listen, Admin: admin, Config: filepath.Join(dir, name+".yaml")}
	g.WriteConfig(t, yaml)
	g.fleetProcess = startProcess(t, bin, name, func(t *testing.T, p *fleetProcess) {
		t.Helper()
		waitUntil(t, p, 30*time.Second, func() bool {
			res, err := http.Get("http://" + admin + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}, "gateway", "--config", g.Config)
	return g
}

// WriteConfig replaces the gateway's configuration file with yaml, and
// its own listen and admin addresses; a restart or a reload reads it.
func (g *fleetGateway) WriteConfig(t *testing.T, yaml string) {
	t.Helper()
	text := fmt.Sprintf("listen: %q\nadmin: %q\n%s", strings.TrimPrefix(g.URL, "http://"), g.Admin, yaml)
	if err := os.WriteFile(g.Config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Reload has the gateway read its configuration file again, by POST
// /admin/reload on its admin listener, and fails the test unless it
// answers 200.
func (g *fleetGateway) Reload(t *testing.T) {
	t.Helper()
	res, err := http.Post("http://"+g.Admin+"/admin/reload", "application/json", nil)
	if err != nil {
		t.Fatalf("%s: reload: %v", g.name, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("%s: reload: %s %s", g.name, res.Status, body)
	}
}

// adminClient asks the gateways' admin listeners, bounded so that a
// loaded machine's slow answer is a "not yet" rather than a hang.
var adminClient = &http.Client{Timeout: 2 * time.Second}

// EndpointStates returns the state (up, ejected, down) of each endpoint of
// service's backend, by URL, as the gateway's /readyz lists them, or nil
// if it does not answer.
func (g *fleetGateway) EndpointStates(service string) map[string]string {
	res, err := adminClient.Get("http://" + g.Admin + "/readyz")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct {
		Endpoints map[string][]struct{ URL, State string } `json:"endpoints"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil
	}
	states := map[string]string{}
	for _, e := range body.Endpoints[service] {
		states[e.URL] = e.State
	}
	return states
}

// Metric returns the value of the counter or gauge name on the gateway's
// /metrics whose labels include every one of labels (such as
// `endpoint="http://127.0.0.1:8082"`), summed over the series that match,
// and whether any did. A counter's name may be given with or without its
// _total suffix.
func (g *fleetGateway) Metric(name string, labels ...string) (float64, bool) {
	res, err := adminClient.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	text, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, false
	}
	sum, found := 0.0, false
lines:
	for _, line := range strings.Split(string(text), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || !(strings.HasPrefix(series, name+"{") || strings.HasPrefix(series, name+"_total{")) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(series, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}
