package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"

	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/redistest"
)

// fleetLimit is the rate limit of every call in the fleet test: a budget
// of fleetRate calls a second with a burst of fleetBurst, per client,
// shared by the gateways through Redis. The burst is four seconds of the
// rate, so that a pause of the load of up to four seconds on a loaded
// machine loses no admission: the budget fills up meanwhile.
const (
	fleetRate  = 40
	fleetBurst = 160
)

// fleetLoad is what one worker of the fleet's load saw.
type fleetLoad struct {
	sent, admitted int
	failed         map[string]int // by code
	// first and last: the first call's sending and answer, the last
	// call's sending and answer.
	firstSent, firstReply, lastSent, lastReply time.Time
	// failedAt are the times of the failed calls.
	failedAt []time.Time
	// examples are the first error of each code.
	examples []string
}

// The portcullis binary as a fleet of seven processes sharing a Redis
// Cluster of three nodes: an issuer publishing revocations to the Cluster,
// three replicas of the licensing backend, and three gateways, gateway i
// forwarding to replica i, each with its own configuration file and ports.
// One client's calls are driven through the three gateways at once, in
// Connect, gRPC and gRPC-Web, well above its limit; one gateway is killed
// as by a crash and started again meanwhile. The calls admitted across the
// three stay within 1% of the one shared budget over the whole run, every
// refusal is ResourceExhausted, and the only other failures are of the
// gateway while it was down. One gateway then reloads its configuration
// through POST /admin/reload and goes on deciding. Then the client is
// revoked at the issuer, and the three gateways refuse its token.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cluster := redistest.StartCluster(t)
	dir := t.TempDir()

	registry := filepath.Join(dir, "clients.yaml")
	secrets := map[string]string{}
	for _, id := range []string{"fleet", "warm-up"} {
		code, stdout, stderr := runCLI(t, "clients", "add", id, "--grant", "LIC.READ_REQUIREMENTS", "--registry", registry)
		if code != 0 {
			t.Fatalf("clients add: %s", stderr)
		}
		secrets[id] = secretOf(t, stdout, id)
	}

	nodes := strings.Join(cluster.Addrs(), ",")
	issuerAddr := freeAddr(t)
	issuerURL := "http://" + issuerAddr
	startProcess(t, bin, "issuer", listening(issuerAddr), "issuer", "serve", "--listen", issuerAddr,
		"--registry", registry, "--keys", filepath.Join(dir, "keys"), "--log-level", "error",
		"--redis", nodes, "--redis-cluster", "--redis-prefix", "fleet:revocations:")
	var replicas []string
	for i := range 3 {
		addr := freeAddr(t)
		startProcess(t, bin, fmt.Sprintf("licensing-%d", i), listening(addr), "backend", "--service", "licensing", "--listen", addr)
		replicas = append(replicas, addr)
	}
	// A Redis that fails closed: a decision Redis fails shows as
	// Unavailable, never as calls admitted by one gateway alone.
	redis := fmt.Sprintf("{cluster: true, addrs: [%s], prefix: %%q, timeout: 1s%%s}", nodes)
	var gateways []*fleetGateway
	for i := range 3 {
		gateways = append(gateways, startGateway(t, bin, dir, fmt.Sprintf("gateway-%d", i), fmt.Sprintf(`issuers: [{issuer: %q, audiences: [portcullis], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, backend: "http://%s"}]
telemetry: {log_level: error, access_log: false}
rate_limit:
  store: redis
  redis: %s
  default: {requests: %d, period: 1s, burst: %d}
revocation: {source: redis, redis: %s}
`, issuerURL, replicas[i], fmt.Sprintf(redis, "fleet:rl:", ", on_failure: closed"), fleetRate, fleetBurst, fmt.Sprintf(redis, "fleet:revocations:", ""))))
	}

	token := func(id string) string {
		creds := clientcredentials.Config{ClientID: id, ClientSecret: secrets[id], TokenURL: issuerURL + "/oauth2/token"}
		tok, err := creds.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tok, warmUp := token("fleet"), token("warm-up")
	httpClient := h2ctest.Client(t)
	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{{"Connect", nil}, {"gRPC", []connect.ClientOption{connect.WithGRPC()}}, {"gRPC-Web", []connect.ClientOption{connect.WithGRPCWeb()}}}
	callWith := func(g int, tok string) error {
		client := licensingv1connect.NewLicensingServiceClient(httpClient, gateways[g].URL, protocols[g].opts...)
		req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
		req.Header().Set("Authorization", "Bearer "+tok)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.ListRequirements(ctx, req)
		return err
	}
	call := func(g int) error { return callWith(g, tok) }

	// The load: three workers per gateway for 9 seconds. Gateway 2 is
	// killed after 3 seconds and started again 2 seconds later. Each
	// worker first opens its connection and has the gateway verify a token
	// with a call of another client, outside the budget.
	const workers = 3
	loads := make([][]*fleetLoad, len(gateways))
	var wg sync.WaitGroup
	for g := range gateways {
		for range workers {
			wg.Go(func() {
				if err := callWith(g, warmUp); err != nil {
					t.Errorf("gateway %d, warming up: %v", g, err)
				}
			})
		}
	}
	wg.Wait()
	deadline := time.Now().Add(9 * time.Second)
	for g := range gateways {
		for range workers {
			l := &fleetLoad{failed: map[string]int{}}
			loads[g] = append(loads[g], l)
			wg.Go(func() {
				for time.Now().Before(deadline) {
					sent := time.Now()
					err := call(g)
					reply := time.Now()
					if l.sent == 0 {
						l.firstSent, l.firstReply = sent, reply
					}
					l.sent++
					l.lastSent, l.lastReply = sent, reply
					switch {
					case err == nil:
						l.admitted++
					case connect.CodeOf(err) == connect.CodeResourceExhausted:
					default:
						if l.failed[connect.CodeOf(err).String()] == 0 {
							l.examples = append(l.examples, err.Error())
						}
						l.failed[connect.CodeOf(err).String()]++
						l.failedAt = append(l.failedAt, reply)
						time.Sleep(10 * time.Millisecond) // a dead gateway refuses at once
					}
				}
			})
		}
	}
	time.Sleep(3 * time.Second)
	killed := time.Now()
	gateways[2].Kill()
	time.Sleep(2 * time.Second)
	gateways[2].Restart()
	restarted := time.Now()
	wg.Wait()

	var total fleetLoad
	total.failed = map[string]int{}
	for g, ls := range loads {
		var sent, admitted int
		failed := map[string]int{}
		for _, l := range ls {
			sent, admitted = sent+l.sent, admitted+l.admitted
			for c, n := range l.failed {
				failed[c] += n
				total.failed[c] += n
			}
			for _, at := range l.failedAt {
				if g != 2 || at.Before(killed) || at.After(restarted.Add(time.Second)) {
					t.Errorf("gateway %d: a call failed at %v, outside the kill of gateway 2 (%v to %v)", g, at.Format(time.StampMilli), killed.Format(time.StampMilli), restarted.Format(time.StampMilli))
				}
			}
			if total.firstSent.IsZero() || l.firstSent.Before(total.firstSent) {
				total.firstSent = l.firstSent
			}
			if total.firstReply.IsZero() || l.firstReply.Before(total.firstReply) {
				total.firstReply = l.firstReply
			}
			if l.lastSent.After(total.lastSent) {
				total.lastSent = l.lastSent
			}
			if l.lastReply.After(total.lastReply) {
				total.lastReply = l.lastReply
			}
		}
		total.sent, total.admitted = total.sent+sent, total.admitted+admitted
		for _, l := range ls {
			if len(l.examples) > 0 {
				t.Logf("gateway %d: errors such as %q", g, l.examples)
				break
			}
		}
		t.Logf("gateway %d (%s, to licensing replica %d): %d calls, %d admitted, %d refused ResourceExhausted, failed %v",
			g, protocols[g].name, g, sent, admitted, sent-admitted-sum(failed), failed)
		if admitted == 0 {
			t.Errorf("gateway %d admitted nothing", g)
		}
	}
	// Under a load well above the limit, the budget admits its burst and
	// then the rate, over a run between the narrow window (from the first
	// answer to the last call sent) and the wide one (from the first call
	// sent to the last answer).
	wide, narrow := total.lastReply.Sub(total.firstSent), total.lastSent.Sub(total.firstReply)
	most := fleetBurst + fleetRate*wide.Seconds()
	least := fleetBurst + fleetRate*narrow.Seconds()
	t.Logf("fleet: %d calls sent in %v (%.0f a second), failed %v; admitted %d of a budget of %.1f to %.1f (%d + %d/s over %v to %v): %.4f of the budget",
		total.sent, wide.Round(time.Millisecond), float64(total.sent)/wide.Seconds(), total.failed, total.admitted,
		least, most, fleetBurst, fleetRate, narrow.Round(time.Millisecond), wide.Round(time.Millisecond), float64(total.admitted)/((least+most)/2))
	if float64(total.admitted) > most+1 || float64(total.admitted) < 0.99*least {
		t.Errorf("admitted %d across the gateways, want at most %.1f and at least 99%% of %.1f", total.admitted, most, least)
	}
	if refused := total.sent - total.admitted - sum(total.failed); refused < total.admitted {
		t.Errorf("%d calls refused for %d admitted: the load was not well above the limit", refused, total.admitted)
	}

	// Gateway 0 reloads its configuration, unchanged, and its new
	// generation goes on deciding with the budget in Redis.
	gateways[0].Reload(t)
	for range 20 {
		if err := call(0); err != nil && connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("gateway 0 after a reload: %v, want admitted or ResourceExhausted", err)
		}
	}

	// The client is revoked: the three gateways refuse its token, through
	// the Cluster's pub/sub, well within 5s (the time includes running
	// "portcullis clients revoke" and the issuer noticing the registry's
	// change; a second on an idle machine).
	start := time.Now()
	if out, err := exec.Command(bin, "clients", "revoke", "fleet", "--registry", registry).CombinedOutput(); err != nil {
		t.Fatalf("clients revoke: %v\n%s", err, out)
	}
	for g := range gateways {
		for {
			err := call(g)
			if connect.CodeOf(err) == connect.CodeUnauthenticated && strings.HasSuffix(err.Error(), "token revoked") {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("gateway %d: %v 5s after the revocation, want the token revoked", g, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Logf("fleet: the three gateways refuse the revoked token %v after clients revoke", time.Since(start).Round(time.Millisecond))
}

// sum adds the counts of m.
func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
