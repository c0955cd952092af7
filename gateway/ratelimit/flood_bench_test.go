package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/h2ctest"

	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/authz"
	"github.com/portcullis/portcullis/gateway/ratelimit"
	"github.com/portcullis/portcullis/gateway/token"
	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
	"github.com/portcullis/portcullis/gen/example/orders/v1/ordersv1connect"
	"github.com/portcullis/portcullis/internal/jwttest"
)

const (
	floodIssuer   = "https://issuer.test"
	floodAudience = "https://api.test"
	floodPhase    = 2 * time.Second
	floodWorkers  = 8                     // the attacker's calls in flight
	validCallers  = 4                     // each from an address of its own
	validInterval = 10 * time.Millisecond // each valid caller's pace
)

// BenchmarkGuardFlood measures what a flood of forged tokens from one
// address costs the valid callers of other addresses, with and without the
// guard, in one run. The server is OrdersService behind the authorization
// gate, verifying ES256 tokens with the token package; the forged tokens
// name the issuer's key but are signed by another, so that each costs a
// signature check. The attacker keeps floodWorkers calls in flight; the
// valid callers each call every validInterval. The addresses are those
// X-Forwarded-For gives from the trusted 127.0.0.0/8.
//
// The attacker is a process of its own (this test binary, running
// TestFloodClient), so that the CPU time measured here is the server's and
// the valid callers'. Each iteration is a phase of floodPhase; run it with
// -benchtime=1x. Metrics: the valid callers' p50 and p99 latency; the
// flood's calls per second and signature checks per second; the server's
// CPU time per flood call, and the share of this process's CPU time the
// flood took: all of it but what the valid callers' calls took in the
// phase without flood.
func BenchmarkGuardFlood(b *testing.B) {
	issuerKey := jwttest.NewEC("k1")
	forger := jwttest.NewEC("k1") // the issuer's key id, another key
	verifier, err := token.NewVerifier(context.Background(),
		[]token.Issuer{{Issuer: floodIssuer, Audiences: []string{floodAudience}, JWKS: jwttest.JWKS(issuerKey)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(verifier.Close)
	authorizer, err := authz.New(compiledCatalog(b), verifier)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	mint := func(signer *jwttest.Signer, id string) string {
		claims := jwttest.ClaimsAt(floodIssuer, floodAudience, now)
		claims["client_id"], claims["jti"] = id, id
		return signer.Mint(nil, claims)
	}
	valid := make([]string, validCallers)
	for i := range valid {
		valid[i] = mint(issuerKey, "valid-"+strconv.Itoa(i))
	}
	forged := make([]string, 64)
	for i := range forged {
		forged[i] = mint(forger, "forged-"+strconv.Itoa(i))
	}
	forgedFile := filepath.Join(b.TempDir(), "forged")
	if err := os.WriteFile(forgedFile, []byte(strings.Join(forged, "\n")), 0o600); err != nil {
		b.Fatal(err)
	}

	var validCPU float64 // per valid call, from the phase without flood
	phase := func(b *testing.B, flood bool, floodRate int, guarded bool) {
		var checks atomic.Int64 // forged tokens the authorization gate verified
		gate := authorizer.Gate()
		counted := func(ctx context.Context, spec connect.Spec, peer connect.Peer, h http.Header) (context.Context, error) {
			ctx, err := gate(ctx, spec, peer, h)
			if connect.CodeOf(err) == connect.CodeUnauthenticated {
				checks.Add(1)
			}
			return ctx, err
		}
		if guarded {
			guard, err := ratelimit.NewGuard(ratelimit.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = guard.Close() })
			counted = guard.Wrap(counted)
		}
		mux := http.NewServeMux()
		mux.Handle(ordersv1connect.NewOrdersServiceHandler(orders{}, connect.WithRequestGate(counted)))
		url := h2ctest.Start(b, mux).URL
		call := func(client ordersv1connect.OrdersServiceClient, bearer, xff string) error {
			req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"})
			req.Header().Set("Authorization", "Bearer "+bearer)
			req.Header().Set("X-Forwarded-For", xff)
			_, err := client.GetOrder(context.Background(), req)
			return err
		}
		validClient := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(b), url)
		for i, raw := range valid { // into the verifier's cache
			if err := call(validClient, raw, "198.51.100."+strconv.Itoa(i+1)); err != nil {
				b.Fatal(err)
			}
		}

		for b.Loop() {
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				latencies []time.Duration
				failed    atomic.Value
				attacker  *exec.Cmd
				out       bytes.Buffer
			)
			checks.Store(0)
			if flood {
				attacker = exec.Command(os.Args[0], "-test.run=^TestFloodClient$")
				attacker.Env = append(os.Environ(), "PORTCULLIS_FLOOD_URL="+url, "PORTCULLIS_FLOOD_TOKENS="+forgedFile,
					"PORTCULLIS_FLOOD_FOR="+floodPhase.String(), "PORTCULLIS_FLOOD_RATE="+strconv.Itoa(floodRate))
				attacker.Stdout, attacker.Stderr = &out, &out
				if err := attacker.Start(); err != nil {
					b.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond) // for it to start flooding
			}
			stop := make(chan struct{})
			cpu := processCPU(b)
			start := time.Now()
			for c := range validCallers {
				wg.Go(func() {
					ticker := time.NewTicker(validInterval)
					defer ticker.Stop()
					for {
						select {
						case <-stop:
							return
						case <-ticker.C:
						}
						sent := time.Now()
						if err := call(validClient, valid[c], "198.51.100."+strconv.Itoa(c+1)); err != nil {
							failed.Store(err)
							return
						}
						mu.Lock()
						latencies = append(latencies, time.Since(sent))
						mu.Unlock()
					}
				})
			}
			time.Sleep(floodPhase - 400*time.Millisecond)
			close(stop)
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			spent := float64(processCPU(b) - cpu)
			checked := checks.Load()
			var floods float64
			if flood {
				if err := attacker.Wait(); err != nil {
					b.Fatalf("attacker: %v\n%s", err, out.Bytes())
				}
				if _, err := fmt.Sscanf(out.String(), "calls/s %g", &floods); err != nil {
					b.Fatalf("attacker: %v\n%s", err, out.Bytes())
				}
			}
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("a valid caller failed: %v", err)
			}
			slices.Sort(latencies)
			b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "valid-p50-µs")
			b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "valid-p99-µs")
			b.ReportMetric(float64(len(latencies))/elapsed, "valid-calls/s")
			if !flood {
				validCPU = spent / float64(len(latencies))
				continue
			}
			floodCPU := max(spent-validCPU*float64(len(latencies)), 0)
			b.ReportMetric(floods, "flood-calls/s")
			b.ReportMetric(float64(checked)/floodPhase.Seconds(), "signature-checks/s")
			b.ReportMetric(floodCPU/elapsed/floods/1e3, "server-cpu-µs/flood-call")
			b.ReportMetric(100*floodCPU/spent, "flood-cpu-%")
		}
	}
	b.Run("baseline=no-flood", func(b *testing.B) { phase(b, false, 0, false) })
	for _, rate := range []int{0, 2000} {
		name := "flood=full-speed"
		if rate > 0 {
			name = "flood=" + strconv.Itoa(rate) + "-per-s"
		}
		b.Run(name+"/guard=off", func(b *testing.B) { phase(b, true, rate, false) })
		b.Run(name+"/guard=on", func(b *testing.B) { phase(b, true, rate, true) })
	}
}

// TestFloodClient is the attacker of BenchmarkGuardFlood, in a process of
// its own: it does nothing unless PORTCULLIS_FLOOD_URL is set. It keeps
// floodWorkers calls with the forged tokens of PORTCULLIS_FLOOD_TOKENS in
// flight for PORTCULLIS_FLOOD_FOR, at most PORTCULLIS_FLOOD_RATE a second
// unless that is 0, and prints its calls per second.
func TestFloodClient(t *testing.T) {
	url := os.Getenv("PORTCULLIS_FLOOD_URL")
	if url == "" {
		return
	}
	raw, err := os.ReadFile(os.Getenv("PORTCULLIS_FLOOD_TOKENS"))
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Split(string(raw), "\n")
	d, err := time.ParseDuration(os.Getenv("PORTCULLIS_FLOOD_FOR"))
	if err != nil {
		t.Fatal(err)
	}
	rate, err := strconv.Atoi(os.Getenv("PORTCULLIS_FLOOD_RATE"))
	if err != nil {
		t.Fatal(err)
	}
	client := ordersv1connect.NewOrdersServiceClient(h2ctest.Client(t), url)
	var calls atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range floodWorkers {
		wg.Go(func() {
			var pace <-chan time.Time
			if rate > 0 {
				ticker := time.NewTicker(time.Second * floodWorkers / time.Duration(rate))
				defer ticker.Stop()
				pace = ticker.C
			}
			for i := w; time.Now().Before(deadline); i++ {
				if pace != nil {
					<-pace
				}
				req := connect.NewRequest(&ordersv1.GetOrderRequest{Id: "o-1"})
				req.Header().Set("Authorization", "Bearer "+forged[i%len(forged)])
				req.Header().Set("X-Forwarded-For", "203.0.113.66")
				_, _ = client.GetOrder(context.Background(), req)
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("calls/s %g\n", float64(calls.Load())/time.Since(start).Seconds())
}
