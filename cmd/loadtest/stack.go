package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/portcullis/portcullis/internal/freeport"
)

// stack is the backend, gateway and HAProxy processes under test, and what
// the load generator needs to call them.
type stack struct {
	backend, gateway, haproxy *process
	// extra are the processes of the experiments measured beside the
	// gateway, and extraURL where their calls go.
	extra      map[target]*process
	extraURL   map[target]string
	jwksFile   string
	backendURL string
	gatewayURL string
	haproxyURL string
	adminURLs  map[target]string // of each gateway process, for -cpuprofile
	key        jwk.Key           // signs the load generator's tokens
	sink       *http.Server
	tokens     *tokenMint
	work       string
	// bin is the portcullis binary; gatewayEnv, traceRatio and sinkAddr
	// are what every gateway process starts with.
	bin        string
	gatewayEnv []string
	traceRatio float64
	sinkAddr   string
	// wrap and ready are those of stackOptions.
	wrap  func(name string) []string
	ready time.Duration
	// rates is the fastest rate seen per scenario and target, to size the
	// pre-minted fresh tokens.
	rates map[string]float64
}

// stackOptions say how to start the stack.
type stackOptions struct {
	gatewayEnv []string
	// wrap returns the command that runs the process of the name
	// ("gateway", "haproxy", "relay") under another program, valgrind, or
	// nil. Such processes are stopped with SIGKILL: callgrind cannot
	// follow the signal of a graceful stop.
	wrap func(name string) []string
	// traceRatio is the gateway's trace_sample_ratio.
	traceRatio float64
	// noHAProxy leaves HAProxy out.
	noHAProxy bool
	// ready is how long the gateway may take to become ready.
	ready time.Duration
}

// url is where calls to t go.
func (s *stack) url(t target) string {
	switch t {
	case viaGateway:
		return s.gatewayURL
	case viaHAProxy:
		return s.haproxyURL
	case direct:
		return s.backendURL
	}
	return s.extraURL[t]
}

// proxy is the process that t calls through, nil for direct calls.
func (s *stack) proxy(t target) *process {
	switch t {
	case viaGateway:
		return s.gateway
	case viaHAProxy:
		return s.haproxy
	case direct:
		return nil
	}
	return s.extra[t]
}

// process is a child process whose CPU time we read from /proc.
type process struct {
	name       string
	cmd        *exec.Cmd
	killOnStop bool
}

func build(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/portcullis")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// startStack starts the backend, the gateway and HAProxy.
func startStack(ctx context.Context, bin, work string, opts stackOptions) (*stack, error) {
	if opts.ready == 0 {
		opts.ready = 30 * time.Second
	}
	s := &stack{work: work, rates: map[string]float64{}, adminURLs: map[target]string{}, wrap: opts.wrap, ready: opts.ready,
		bin: bin, gatewayEnv: opts.gatewayEnv, traceRatio: opts.traceRatio}
	var err error
	if s.key, err = newSigningKey("loadtest"); err != nil {
		return nil, err
	}
	s.tokens = &tokenMint{key: s.key}
	pub, err := s.key.PublicKey()
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	jwksFile := filepath.Join(work, "jwks.json")
	s.jwksFile = jwksFile
	if err := writeJSON(jwksFile, set); err != nil {
		return nil, err
	}

	if s.sinkAddr, err = s.startTraceSink(); err != nil {
		return nil, err
	}
	backendAddr := freeAddr()
	s.backendURL = "http://" + backendAddr
	s.backend, err = start(ctx, "backend", nil, bin, "backend", "--service", "orders", "--listen", backendAddr)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.backendURL+"/example.orders.v1.OrdersService/GetOrder", 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("backend: %w", err)
	}
	if s.gateway, s.gatewayURL, err = s.startGateway(ctx, "gateway", bin, opts.gatewayEnv); err != nil {
		s.stop()
		return nil, err
	}
	if opts.noHAProxy {
		return s, nil
	}

	haproxyAddr := freeAddr()
	s.haproxyURL = "http://" + haproxyAddr
	var pubRaw ecdsa.PublicKey
	if err := pub.Raw(&pubRaw); err != nil {
		s.stop()
		return nil, err
	}
	haproxyCfg, err := writeHAProxyConfig(work, haproxyAddr, s.backendURL, &pubRaw)
	if err == nil {
		err = checkHAProxy(ctx, haproxyCfg)
	}
	if err == nil {
		// -db: in the foreground, one process whose threads serve
		// everything, so that /proc/PID/stat holds all its CPU time.
		s.haproxy, err = s.start(ctx, "haproxy", nil, "haproxy", "-db", "-f", haproxyCfg)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	if err := waitTCP(ctx, haproxyAddr, opts.ready); err != nil {
		s.stop()
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	return s, nil
}

// gatewayConfig is the benchmark's gateway configuration: the load
// generator's issuer, the orders backend, a tier that nothing refuses, and
// no access log.
func gatewayConfig(listen, admin, jwksFile, backendURL string, traceRatio float64) string {
	return fmt.Sprintf(`listen: %q
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
  trace_sample_ratio: %g
  profiling: true
`, listen, admin, jwksFile, backendURL, traceRatio)
}

// gatewayOTelEnv is the environment of a gateway's telemetry: spans are
// sampled and exported over OTLP to a sink that discards them, as a
// gateway in production would export them to a collector.
func (s *stack) gatewayOTelEnv() []string {
	return []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + s.sinkAddr,
		"OTEL_METRICS_EXPORTER=none",
		"OTEL_LOGS_EXPORTER=none",
	}
}

// startGateway starts a gateway process of the binary, named name, with
// the benchmark's configuration on addresses of its own, and waits until
// it is ready. It returns the process and the URL calls go to.
func (s *stack) startGateway(ctx context.Context, name, bin string, extraEnv []string) (*process, string, error) {
	return s.startGatewayOn(ctx, name, bin, extraEnv, false)
}

// startGatewayOn is startGateway, and with grpcListen the URL returned is
// that of the gateway's gRPC listener (grpc_listen).
func (s *stack) startGatewayOn(ctx context.Context, name, bin string, extraEnv []string, grpcListen bool) (*process, string, error) {
	gatewayAddr, adminAddr := freeAddr(), freeAddr()
	s.adminURLs[target(name)] = "http://" + adminAddr
	cfg := gatewayConfig(gatewayAddr, adminAddr, s.jwksFile, s.backendURL, s.traceRatio)
	if grpcListen {
		gatewayAddr = freeAddr()
		cfg += fmt.Sprintf("grpc_listen: %q\n", gatewayAddr)
	}
	cfgFile := filepath.Join(s.work, name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	env := s.gatewayOTelEnv()
	env = append(env, extraEnv...)
	p, err := s.start(ctx, name, env, bin, "gateway", "--config", cfgFile)
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, "http://"+adminAddr+"/readyz", s.ready); err != nil {
		return p, "", fmt.Errorf("%s: %w", name, err)
	}
	return p, "http://" + gatewayAddr, nil
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
	procs := []*process{s.haproxy, s.gateway, s.backend}
	for _, p := range s.extra {
		procs = append(procs, p)
	}
	for _, p := range procs {
		if p != nil && p.cmd.Process != nil && p.cmd.ProcessState == nil {
			if p.killOnStop {
				_ = p.cmd.Process.Kill()
			} else {
				_ = p.cmd.Process.Signal(os.Interrupt)
			}
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

// start starts the process of the name, under s.wrap's command if any.
func (s *stack) start(ctx context.Context, name string, env []string, args ...string) (*process, error) {
	var wrap []string
	if s.wrap != nil {
		wrap = s.wrap(name)
	}
	p, err := start(ctx, name, env, append(slices.Clone(wrap), args...)...)
	if err == nil && len(wrap) > 0 {
		p.killOnStop = true
	}
	return p, err
}

func start(ctx context.Context, name string, env []string, args ...string) (*process, error) {
	bin, args := args[0], args[1:]
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

// sysCPU returns the system part of the CPU time the process has used.
func (p *process) sysCPU() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat line")
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(stime) * time.Second / 100, err
}

// freeAddr names an address on 127.0.0.1 for a process to listen on.
func freeAddr() string {
	port, err := freeport.Pick()
	if err != nil {
		log.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, wait time.Duration) error {
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s does not accept connections", addr)
}

// waitHTTP waits until url answers anything at all over HTTP.
func waitHTTP(ctx context.Context, url string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
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
	return fmt.Errorf("%s did not answer within %s", url, wait)
}

// profile takes a CPU profile of t's process over d into file and, over
// the same time, a profile of its allocations into file + ".allocs".
func (s *stack) profile(ctx context.Context, t target, d time.Duration, file string) error {
	admin, ok := s.adminURLs[t]
	if !ok {
		return fmt.Errorf("profile: %s is not a gateway process", t)
	}
	seconds := max(int(d.Seconds()), 1)
	allocs := make(chan error, 1)
	go func() {
		allocs <- fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", admin, seconds), file+".allocs")
	}()
	err := fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, seconds), file)
	return errors.Join(err, <-allocs)
}

// fetchProfile writes the profile at url to file.
func fetchProfile(ctx context.Context, url, file string) error {
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
