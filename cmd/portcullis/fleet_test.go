package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis/portcullis/gateway/forward"
	licensingv1 "github.com/portcullis/portcullis/gen/example/licensing/v1"
	"github.com/portcullis/portcullis/gen/example/licensing/v1/licensingv1connect"
	"github.com/portcullis/portcullis/internal/freeport"
	"github.com/portcullis/portcullis/internal/h2ctest"
	"github.com/portcullis/portcullis/internal/redistest"
)

// fleetLimit is the rate limit of the fleet test's calls, but for the
// gold tier's: a budget of fleetRate calls a second with a burst of
// fleetBurst, per client, shared by the gateways through Redis. The burst
// is four seconds of the rate, so that a pause of the load of up to four
// seconds on a loaded machine loses no admission: the budget fills up
// meanwhile.
const (
	fleetRate  = 40
	fleetBurst = 160
)

// fleetTierLimit is a rate limit of the fleet's gold tier: rate calls a
// second with a burst of burst.
type fleetTierLimit struct{ rate, burst int }

// The gold tier's limit, which a reload of gateway 0 changes from
// goldBefore to goldAfter, five times the rate, for the one client of
// that tier, whose calls go through gateway 0 alone. The limit after has
// a burst of four seconds of its rate, as the fleet's, so that a pause of
// the load loses no admission.
var (
	goldBefore = fleetTierLimit{rate: 3, burst: 3}
	goldAfter  = fleetTierLimit{rate: 15, burst: 60}
)

// fleetCall is one call of the fleet's load: when it was sent, when its
// answer came, and whether it was admitted.
type fleetCall struct {
	sent, reply time.Time
	admitted    bool
}

// fleetLoad is what one worker of the fleet's load saw.
type fleetLoad struct {
	sent, admitted int
	failed         map[string]int // by code
	// retries adds up the Portcullis-Retries headers of the answers.
	retries int
	// first and last: the first call's sending and answer, the last
	// call's sending and answer.
	firstSent, firstReply, lastSent, lastReply time.Time
	// failedAt are the times of the failed calls.
	failedAt []time.Time
	// examples are the first error of each code.
	examples []string
	// calls are every call, in order.
	calls []fleetCall
}

// The portcullis binary as a fleet of seven processes sharing a Redis
// Cluster of three nodes: an issuer publishing revocations to the Cluster,
// three replicas of the licensing backend, and three gateways, each
// balancing the licensing service over the three replicas (round robin,
// with health probes, outlier ejection and retries), each with its own
// configuration file and ports. One client's calls are driven through the
// three gateways at once, in Connect, gRPC and gRPC-Web, well above its
// limit, and a client of the gold tier's through gateway 0. Meanwhile:
//
//   - one gateway is killed as by a crash and started again;
//   - one backend replica is killed as by a crash: no call fails, since
//     ListRequirements is free of side effects and is retried on another
//     replica; every gateway takes it out of its rotation;
//   - it is started again on the same port, and every gateway sends it
//     calls again;
//   - gateway 0 reloads a configuration in which the gold tier's limit is
//     five times higher: no call fails, and the gold client's admissions
//     follow the old limit before and the new one after.
//
// The calls admitted across the three gateways stay within 1% of the
// client's one shared budget over the whole run, every refusal is
// ResourceExhausted, and the only other failures are of the gateway while
// it was down. Then the client is revoked at the issuer, and the three
// gateways refuse its token.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cluster := redistest.StartCluster(t)
	dir := t.TempDir()

	registry := filepath.Join(dir, "clients.yaml")
	secrets := map[string]string{}
	for _, c := range []struct{ id, tier string }{{"fleet", ""}, {"warm-up", ""}, {"gold", "gold"}} {
		args := []string{"clients", "add", c.id, "--grant", "LIC.READ_REQUIREMENTS", "--registry", registry}
		if c.tier != "" {
			args = append(args, "--tier", c.tier)
		}
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("clients add: %s", stderr)
		}
		secrets[c.id] = secretOf(t, stdout, c.id)
	}

	nodes := strings.Join(cluster.Addrs(), ",")
	issuerAddr := freeport.Addr(t)
	issuerURL := "http://" + issuerAddr
	startProcess(t, bin, "issuer", listening(issuerAddr), "issuer", "serve", "--listen", issuerAddr,
		"--registry", registry, "--keys", filepath.Join(dir, "keys"), "--log-level", "error",
		"--redis", nodes, "--redis-cluster", "--redis-prefix", "fleet:revocations:")
	var replicas []*fleetProcess
	var endpoints []string
	for i := range 3 {
		addr := freeport.Addr(t)
		replicas = append(replicas, startProcess(t, bin, fmt.Sprintf("licensing-%d", i), listening(addr), "backend", "--service", "licensing", "--listen", addr))
		endpoints = append(endpoints, fmt.Sprintf("%q", "http://"+addr))
	}
	// A Redis that fails closed: a decision Redis fails shows as
	// Unavailable, never as calls admitted by one gateway alone. Probes
	// and ejections on the scale of a test: an endpoint is probed every
	// 200ms and ejected for 1s after 3 calls in a row found it unreachable.
	redis := fmt.Sprintf("{cluster: true, addrs: [%s], prefix: %%q, timeout: 1s%%s}", nodes)
	config := func(gold fleetTierLimit) string {
		return fmt.Sprintf(`issuers: [{issuer: %q, audiences: [portcullis], discovery: true}]
routes: [{service: example.licensing.v1.LicensingService, endpoints: [%s], balancer: round_robin}]
health:
  interval: 200ms
  outlier: {enabled: true, consecutive_failures: 3, base_ejection_time: 1s, max_ejection_time: 4s}
  retries: {max_attempts: 3}
telemetry: {log_level: error, access_log: false}
rate_limit:
  store: redis
  redis: %s
  default: {requests: %d, period: 1s, burst: %d}
  tiers:
    gold: {override: {requests: %d, period: 1s, burst: %d}}
revocation: {source: redis, redis: %s}
`, issuerURL, strings.Join(endpoints, ", "), fmt.Sprintf(redis, "fleet:rl:", ", on_failure: closed"), fleetRate, fleetBurst,
			gold.rate, gold.burst, fmt.Sprintf(redis, "fleet:revocations:", ""))
	}
	var gateways []*fleetGateway
	for i := range 3 {
		gateways = append(gateways, startGateway(t, bin, dir, fmt.Sprintf("gateway-%d", i), config(goldBefore)))
	}

	token := func(id string) string {
		creds := clientcredentials.Config{ClientID: id, ClientSecret: secrets[id], TokenURL: issuerURL + "/oauth2/token"}
		tok, err := creds.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	tok, warmUp, gold := token("fleet"), token("warm-up"), token("gold")
	httpClient := h2ctest.Client(t)
	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{{"Connect", nil}, {"gRPC", []connect.ClientOption{connect.WithGRPC()}}, {"gRPC-Web", []connect.ClientOption{connect.WithGRPCWeb()}}}
	// callWith sends one call through gateway g and returns how many times
	// the gateway retried it, as its answer says.
	callWith := func(g int, tok string) (int, error) {
		client := licensingv1connect.NewLicensingServiceClient(httpClient, gateways[g].URL, protocols[g].opts...)
		req := connect.NewRequest(&licensingv1.ListRequirementsRequest{Jurisdiction: "US-CA", BusinessKind: "restaurant"})
		req.Header().Set("Authorization", "Bearer "+tok)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := client.ListRequirements(ctx, req)
		if err != nil {
			return 0, err
		}
		retries := res.Header().Get(forward.RetriesHeader)
		if retries == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(retries)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s: %q", forward.RetriesHeader, retries)
		}
		return n, nil
	}
	call := func(g int) error {
		_, err := callWith(g, tok)
		return err
	}

	// The load: three workers per gateway, and two of the gold client on
	// gateway 0, until the timeline below is done. Each worker first opens
	// its connection and has the gateway verify a token with a call of
	// another client, outside the budget.
	const workers = 3
	loads := make([][]*fleetLoad, len(gateways))
	var goldLoads []*fleetLoad
	var wg sync.WaitGroup
	for g := range gateways {
		for range workers {
			wg.Go(func() {
				if _, err := callWith(g, warmUp); err != nil {
					t.Errorf("gateway %d, warming up: %v", g, err)
				}
			})
		}
	}
	wg.Wait()
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopLoad := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	defer stopLoad() // on a failure of the timeline too
	work := func(g int, tok string, l *fleetLoad) {
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent := time.Now()
			retries, err := callWith(g, tok)
			reply := time.Now()
			if l.sent == 0 {
				l.firstSent, l.firstReply = sent, reply
			}
			l.sent++
			l.lastSent, l.lastReply = sent, reply
			l.retries += retries
			l.calls = append(l.calls, fleetCall{sent: sent, reply: reply, admitted: err == nil})
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
	}
	for g := range gateways {
		for range workers {
			l := &fleetLoad{failed: map[string]int{}}
			loads[g] = append(loads[g], l)
			wg.Go(func() { work(g, tok, l) })
		}
	}
	for range 2 {
		l := &fleetLoad{failed: map[string]int{}}
		goldLoads = append(goldLoads, l)
		wg.Go(func() { work(0, gold, l) })
	}

	// untilEvery polls the gateways every 20ms until ok holds on each, and
	// returns how long after from it first held on each.
	untilEvery := func(what string, from time.Time, timeout time.Duration, ok func(g int) bool) []time.Duration {
		took := make([]time.Duration, len(gateways))
		for left := len(gateways); left > 0; time.Sleep(20 * time.Millisecond) {
			for g := range gateways {
				if took[g] == 0 && ok(g) {
					took[g], left = time.Since(from), left-1
				}
			}
			if left > 0 && time.Since(from) > timeout {
				t.Errorf("%s: not on every gateway within %v (%v)", what, timeout, took)
				break
			}
		}
		return took
	}
	const service = "example.licensing.v1.LicensingService"
	state := func(g int, url string) string { return gateways[g].EndpointStates(service)[url] }
	// served is how many calls gateway g's endpoint url answered: those sent
	// to it less those that found it unreachable.
	served := func(g int, url string) float64 {
		label := `endpoint="` + url + `"`
		sent, _ := gateways[g].Metric("portcullis_backend_endpoint_requests", label)
		failed, _ := gateways[g].Metric("portcullis_backend_endpoint_failures", label)
		return sent - failed
	}
	maxOf := func(ds []time.Duration) time.Duration {
		var most time.Duration
		for _, d := range ds {
			most = max(most, d)
		}
		return most
	}

	// The timeline. Gateway 2 is killed after 2 seconds and started again
	// 2 seconds later.
	time.Sleep(2 * time.Second)
	killed := time.Now()
	gateways[2].Kill()
	time.Sleep(2 * time.Second)
	gateways[2].Restart()
	restarted := time.Now()

	// A second later, replica 1 is killed; every gateway's /readyz soon
	// shows it out of the rotation. After 2 seconds it is started again on
	// the same port, and every gateway's /readyz soon shows it up, and its
	// metrics calls it answered.
	time.Sleep(time.Second)
	victim := strings.Trim(endpoints[1], `"`)
	replicaKilled := time.Now()
	replicas[1].Kill()
	gone := untilEvery("the killed replica out of the rotation", replicaKilled, 10*time.Second, func(g int) bool {
		s := state(g, victim)
		return s != "" && s != string(forward.EndpointUp)
	})
	// sentTo is how many calls gateway g sent to its endpoint url,
	// retries included, reachable or not.
	sentTo := func(g int, url string) float64 {
		n, _ := gateways[g].Metric("portcullis_backend_endpoint_requests", `endpoint="`+url+`"`)
		return n
	}
	goneSent := make([]float64, len(gateways))
	for g := range gateways {
		goneSent[g] = sentTo(g, victim)
	}
	time.Sleep(time.Until(replicaKilled.Add(2 * time.Second)))
	before, sentOut := make([]float64, len(gateways)), make([]float64, len(gateways))
	for g := range gateways {
		before[g], sentOut[g] = served(g, victim), sentTo(g, victim)-goneSent[g]
	}
	replicas[1].Restart()
	replicaRestarted := time.Now()
	back := untilEvery("the restarted replica in the rotation and answering calls", replicaRestarted, 15*time.Second, func(g int) bool {
		return state(g, victim) == string(forward.EndpointUp) && served(g, victim) > before[g]
	})
	replicaBack := time.Now()

	// Half a second later, gateway 0 reloads with the gold tier's limit
	// raised, and the load goes on for 4 seconds.
	time.Sleep(500 * time.Millisecond)
	gateways[0].WriteConfig(t, config(goldAfter))
	reloadSent := time.Now()
	gateways[0].Reload(t)
	reloaded := time.Now()
	time.Sleep(4 * time.Second)
	stopLoad()

	// Every failure is of gateway 2 while it was down: none while the
	// replica was killed and restarted, none around the reload.
	phase := func(at time.Time) string {
		switch {
		case at.Before(killed):
			return "before the kill of gateway 2"
		case !at.After(restarted.Add(time.Second)):
			return "while gateway 2 was killed and restarted"
		case at.Before(replicaKilled):
			return "after the restart of gateway 2"
		case !at.After(replicaBack):
			return "while replica 1 was killed and restarted"
		case at.Before(reloadSent):
			return "after the restart of replica 1"
		case !at.After(reloaded):
			return "during the reload of gateway 0"
		default:
			return "after the reload of gateway 0"
		}
	}
	check := func(g int, who string, l *fleetLoad) {
		for _, at := range l.failedAt {
			if g != 2 || at.Before(killed) || at.After(restarted.Add(time.Second)) {
				t.Errorf("gateway %d, %s: a call failed at %v, %s (gateway 2 was down from %v to %v)", g, who, at.Format(time.StampMilli), phase(at),
					killed.Format(time.StampMilli), restarted.Format(time.StampMilli))
			}
		}
	}

	var total fleetLoad
	total.failed = map[string]int{}
	retries := 0
	for g, ls := range loads {
		var sent, admitted, retried int
		failed := map[string]int{}
		for _, l := range ls {
			sent, admitted, retried = sent+l.sent, admitted+l.admitted, retried+l.retries
			for c, n := range l.failed {
				failed[c] += n
				total.failed[c] += n
			}
			check(g, "client fleet", l)
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
		retries += retried
		for _, l := range ls {
			if len(l.examples) > 0 {
				t.Logf("gateway %d: errors such as %q", g, l.examples)
				break
			}
		}
		t.Logf("gateway %d (%s, to the three licensing replicas): %d calls, %d admitted (%d of them retried), %d refused ResourceExhausted, failed %v",
			g, protocols[g].name, sent, admitted, retried, sent-admitted-sum(failed), failed)
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

	// The replica's kill and restart, as the gateways saw them.
	retryMetric := 0.0
	for g := range gateways {
		n, _ := gateways[g].Metric("portcullis_backend_retries")
		retryMetric += n
		for _, e := range endpoints {
			if url := strings.Trim(e, `"`); served(g, url) == 0 {
				t.Errorf("gateway %d: no call answered by %s", g, url)
			}
		}
	}
	t.Logf("replica 1 killed: out of the rotation (/readyz not up) on every gateway %v after the kill (%v by gateway); calls sent to it while out %v by gateway; "+
		"started again in %v, then up on /readyz and answering calls on every gateway %v after it listened (%v by gateway)",
		maxOf(gone).Round(time.Millisecond), roundAll(gone), sentOut, replicaRestarted.Sub(replicaKilled.Add(2*time.Second)).Round(time.Millisecond),
		maxOf(back).Round(time.Millisecond), roundAll(back))
	t.Logf("retries: %d answers' %s add up to %d; the gateways' portcullis_backend_retries %.0f", retries+retriesOf(goldLoads), forward.RetriesHeader,
		retries+retriesOf(goldLoads), retryMetric)

	// The gold client: its admissions answered before the reload was
	// asked for follow the old limit; those sent after it was answered,
	// the new one. The new limit's least allows for the budget the old one
	// had spent ahead (its burst, and one call of each worker under way).
	var goldFirstSent time.Time
	var goldBeforeN, goldAfterN, goldCalls int
	var firstReplyAfter, lastSentAfter, lastReplyAfter time.Time
	for i, l := range goldLoads {
		check(0, "client gold", l)
		goldCalls += l.sent
		for _, c := range l.calls {
			if goldFirstSent.IsZero() || c.sent.Before(goldFirstSent) {
				goldFirstSent = c.sent
			}
			if c.admitted && c.reply.Before(reloadSent) {
				goldBeforeN++
			}
			if c.sent.Before(reloaded) {
				continue
			}
			if c.admitted {
				goldAfterN++
			}
			if firstReplyAfter.IsZero() || c.reply.Before(firstReplyAfter) {
				firstReplyAfter = c.reply
			}
			lastSentAfter, lastReplyAfter = maxTime(lastSentAfter, c.sent), maxTime(lastReplyAfter, c.reply)
		}
		if len(l.examples) > 0 {
			t.Logf("gold worker %d: errors such as %q", i, l.examples)
		}
	}
	beforeWindow := reloadSent.Sub(goldFirstSent)
	beforeMost := float64(goldBefore.burst) + float64(goldBefore.rate)*beforeWindow.Seconds()
	afterWide, afterNarrow := lastReplyAfter.Sub(reloaded), lastSentAfter.Sub(firstReplyAfter)
	afterMost := float64(goldAfter.burst) + float64(goldAfter.rate)*afterWide.Seconds()
	ahead := float64(goldBefore.burst)/float64(goldBefore.rate) + float64(len(goldLoads))/float64(goldBefore.rate)
	afterLeast := float64(goldAfter.burst) + float64(goldAfter.rate)*(afterNarrow.Seconds()-ahead) - float64(len(goldLoads))
	oldMost := float64(goldBefore.burst) + float64(goldBefore.rate)*afterWide.Seconds()
	t.Logf("gold, through gateway 0: %d calls; before the reload %d admitted in %v, at most %.1f by the old limit (%d + %d/s); "+
		"after it %d admitted in %v to %v, %.1f to %.1f by the new limit (%d + %d/s), at most %.1f by the old; the reload took %v",
		goldCalls, goldBeforeN, beforeWindow.Round(time.Millisecond), beforeMost, goldBefore.burst, goldBefore.rate,
		goldAfterN, afterNarrow.Round(time.Millisecond), afterWide.Round(time.Millisecond), afterLeast, afterMost, goldAfter.burst, goldAfter.rate,
		oldMost, reloaded.Sub(reloadSent).Round(time.Millisecond))
	if float64(goldBeforeN) > beforeMost+1 {
		t.Errorf("gold: %d admitted before the reload, over the old limit's %.1f", goldBeforeN, beforeMost)
	}
	if float64(goldAfterN) > afterMost+1 || float64(goldAfterN) < 0.9*afterLeast {
		t.Errorf("gold: %d admitted after the reload, want at most %.1f and at least 90%% of %.1f", goldAfterN, afterMost, afterLeast)
	}
	if float64(goldAfterN) <= oldMost+1 {
		t.Errorf("gold: %d admitted after the reload, within the old limit's %.1f: the new limit is not in force", goldAfterN, oldMost)
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

// retriesOf adds up the retries the loads saw.
func retriesOf(loads []*fleetLoad) int {
	n := 0
	for _, l := range loads {
		n += l.retries
	}
	return n
}

// roundAll rounds each of ds to the millisecond.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// sum adds the counts of m.
func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
