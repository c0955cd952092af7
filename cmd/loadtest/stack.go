package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// stack is the backend and gateway processes under test, and what the load
// generator needs to call them.
type stack struct {
	backend, gateway *process
	backendURL       string
	gatewayURL       string
	adminURL         string
	key              jwk.Key // signs the load generator's tokens
	sink             *http.Server
}

// process is a child process whose CPU time we read from /proc.
type process struct {
	name string
	cmd  *exec.Cmd
}

func build(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/portcullis")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// startStack starts the backend and the gateway; gatewayEnv is added to
// the gateway's environment.
func startStack(ctx context.Context, bin, work string, gatewayEnv []string) (*stack, error) {
	s := new(stack)
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if s.key, err = jwk.FromRaw(raw); err != nil {
		return nil, err
	}
	_ = s.key.Set(jwk.KeyIDKey, "loadtest")
	_ = s.key.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, err := s.key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwksFile := filepath.Join(work, "jwks.json")
	if err := writeJSON(jwksFile, set); err != nil {
		return nil, err
	}

	sinkAddr, err := s.startTraceSink()
	if err != nil {
		return nil, err
	}
	backendAddr, gatewayAddr, adminAddr := freeAddr(), freeAddr(), freeAddr()
	s.backendURL, s.gatewayURL, s.adminURL = "http://"+backendAddr, "http://"+gatewayAddr, "http://"+adminAddr

	s.backend, err = start(ctx, "backend", bin, nil, "backend", "--service", "orders", "--listen", backendAddr)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.backendURL+"/example.orders.v1.OrdersService/GetOrder"); err != nil {
		s.stop()
		return nil, fmt.Errorf("backend: %w", err)
	}

	cfg := fmt.Sprintf(`listen: %q
admin: %q
issuers:
  - issuer: loadtest
    audiences: [portcullis]
    jwks_file: %q
    algorithms: [ES256]
routes:
  - service: example.orders.v1.OrdersService
    backend: %q
rate_limit:
  tiers:
    bench:
      override: {requests: 1000000, period: 1s, burst: 1000000}
telemetry:
  log_level: warn
  access_log: false
  trace_sample_ratio: 1
  profiling: true
`, gatewayAddr, adminAddr, jwksFile, s.backendURL)
	cfgFile := filepath.Join(work, "gateway.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	env := []string{
		// Spans are sampled and exported over OTLP to a sink that discards
		// them, as a gateway in production would export them to a collector.
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + sinkAddr,
		"OTEL_METRICS_EXPORTER=none",
		"OTEL_LOGS_EXPORTER=none",
	}
	env = append(env, gatewayEnv...)
	s.gateway, err = start(ctx, "gateway", bin, env, "gateway", "--config", cfgFile)
	if err != nil {
		s.stop()
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+adminAddr+"/readyz"); err != nil {
		s.stop()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return s, nil
}

// startTraceSink serves OTLP/HTTP trace exports and discards them.
func (s *stack) startTraceSink() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.sink = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.sink.Serve(ln) }()
	return ln.Addr().String(), nil
}

func (s *stack) stop() {
	for _, p := range []*process{s.gateway, s.backend} {
		if p != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
	}
	if s.sink != nil {
		_ = s.sink.Close()
	}
}

func start(ctx context.Context, name, bin string, env []string, args ...string) (*process, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Printf("%s: %s", name, sc.Text())
		}
	}()
	return &process{name: name, cmd: cmd}, nil
}

// cpu returns the CPU time (user + system) the process has used.
func (p *process) cpu() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces; utime and stime are fields 14 and 15 of the line.
	rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat line")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits until url answers anything at all over HTTP.
func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer within 30s", url)
}

// profile saves a CPU profile of the gateway taken over d.
func (s *stack) profile(ctx context.Context, d time.Duration, file string) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.adminURL, max(int(d.Seconds()), 1))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
