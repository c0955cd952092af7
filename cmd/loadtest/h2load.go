package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	ordersv1 "github.com/portcullis/portcullis/gen/example/orders/v1"
)

// h2load (nghttp2's load generator, in C) drives gRPC unary calls over
// h2c: the same request body for every call, from a file holding one gRPC
// frame. It costs the machine's shared cores less per call than a Go
// generator, and it is the same for every target. It cannot change a header
// per call, so fresh-token runs use the harness's own generator.

const placeOrderPath = "/example.orders.v1.OrdersService/PlaceOrder"

// grpcFrame is msg as one uncompressed gRPC length-prefixed message.
func grpcFrame(msg proto.Message) ([]byte, error) {
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(data)))
	return append(frame, data...), nil
}

// h2loadRun is what one h2load run reports.
type h2loadRun struct {
	done, started, succeeded int
	failed                   int // failed + errored + timeout
	status2xx, statusOther   int
	dataBytes                int64
	elapsed                  time.Duration
	latencies                []time.Duration
}

var (
	h2loadRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2loadData     = regexp.MustCompile(`traffic: .*\((\d+)\) data`)
	h2loadFinished = regexp.MustCompile(`finished in ([0-9.]+[a-zµ]+),`)
)

// parseH2load reads h2load's summary and the per-request log it wrote
// (start time in µs, HTTP status, µs until the end of the response).
func parseH2load(summary []byte, log io.Reader) (h2loadRun, error) {
	var r h2loadRun
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	m := h2loadRequests.FindSubmatch(summary)
	st := h2loadStatus.FindSubmatch(summary)
	d := h2loadData.FindSubmatch(summary)
	if m == nil || st == nil || d == nil {
		return r, fmt.Errorf("h2load printed no summary: %s", lastLines(summary, 5))
	}
	r.started, r.done, r.succeeded = atoi(string(m[2])), atoi(string(m[3])), atoi(string(m[4]))
	r.failed = atoi(string(m[5])) + atoi(string(m[6])) + atoi(string(m[7]))
	r.status2xx = atoi(string(st[1]))
	r.statusOther = atoi(string(st[2])) + atoi(string(st[3])) + atoi(string(st[4]))
	r.dataBytes, _ = strconv.ParseInt(string(d[1]), 10, 64)
	if f := h2loadFinished.FindSubmatch(summary); f != nil {
		r.elapsed, _ = time.ParseDuration(strings.Replace(string(f[1]), "µ", "u", 1))
	}
	if r.elapsed <= 0 {
		return r, fmt.Errorf("h2load printed no time: %s", lastLines(summary, 5))
	}
	sc := bufio.NewScanner(log)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		if f[1] != "200" {
			r.statusOther++ // counted again: a log line with any other status fails the run
			continue
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return r, fmt.Errorf("h2load log: %q: %w", sc.Text(), err)
		}
		r.latencies = append(r.latencies, time.Duration(us)*time.Microsecond)
	}
	return r, sc.Err()
}

// check says why a run of n calls does not show every call answered with
// an order placed: a call not done, an HTTP status other than 200, or a
// failed stream, as h2load counts them; or, since h2load does not read
// trailers, where a gRPC error would be, fewer orders placed by the backend
// than calls. placed is how many orders the backend placed over the run.
func (r h2loadRun) check(n, placed int) error {
	switch {
	case r.done != n:
		return fmt.Errorf("h2load: %d of %d calls done", r.done, n)
	case r.statusOther > 0 || r.status2xx != n:
		return fmt.Errorf("h2load: %d of %d responses with an HTTP status other than 200", n-r.status2xx, n)
	case r.failed > 0 || r.succeeded != r.done:
		return fmt.Errorf("h2load: %d of %d calls succeeded", r.succeeded, r.done)
	case len(r.latencies) != n:
		return fmt.Errorf("h2load: %d calls logged, %d made", len(r.latencies), n)
	case placed != n:
		return fmt.Errorf("h2load: %d calls answered 200, but the backend placed %d orders: the others failed with a gRPC status", n, placed)
	}
	return nil
}

// probeGRPC places one order with the body and headers h2load sends,
// checks that it succeeds with grpc-status 0, and returns the sequence
// number in the placed order's id (ord-0042): the backend numbers the
// orders it places, so the numbers of two probes tell how many orders it
// placed between them.
func probeGRPC(ctx context.Context, url string, header http.Header, body []byte) (int, error) {
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+placeOrderPath, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status") // trailers-only
	}
	if resp.StatusCode != http.StatusOK || status != "0" || len(data) < 5 {
		return 0, fmt.Errorf("probe: HTTP %d, grpc-status %q %q, %d bytes", resp.StatusCode, status,
			resp.Trailer.Get("Grpc-Message")+resp.Header.Get("Grpc-Message"), len(data))
	}
	var msg ordersv1.PlaceOrderResponse
	if err := proto.Unmarshal(data[5:], &msg); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	seq, err := strconv.Atoi(strings.TrimPrefix(msg.GetOrder().GetId(), "ord-"))
	if err != nil {
		return 0, fmt.Errorf("probe: order id %q: %w", msg.GetOrder().GetId(), err)
	}
	return seq, nil
}

// runH2load makes n calls with h2load against url, on conns connections
// of streams concurrent streams each, and returns what it counted;
// run.check says whether every call succeeded. A fixed number of calls,
// rather than h2load's timed mode, so that every call's response is
// counted and the CPU read around the run covers exactly those calls.
func runH2load(ctx context.Context, work, url string, header http.Header, body []byte, conns, streams, n int) (h2loadRun, error) {
	bodyFile := filepath.Join(work, "grpc-request.bin")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return h2loadRun{}, err
	}
	logFile := filepath.Join(work, "h2load.log")
	if err := os.Remove(logFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h2loadRun{}, err // h2load would append to it
	}
	args := []string{
		"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"-n", strconv.Itoa(n),
		"-d", bodyFile, "--log-file", logFile,
	}
	for _, k := range slices.Sorted(maps.Keys(header)) {
		args = append(args, "-H", strings.ToLower(k)+": "+header.Get(k))
	}
	args = append(args, url+placeOrderPath)
	// The output is not echoed: the command line holds a token.
	out, err := exec.CommandContext(ctx, "h2load", args...).CombinedOutput()
	if err != nil {
		return h2loadRun{}, fmt.Errorf("h2load: %w: %s", err, lastLines(out, 3))
	}
	log, err := os.Open(logFile)
	if err != nil {
		return h2loadRun{}, err
	}
	defer log.Close()
	return parseH2load(out, log)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// placeOrderBody is the gRPC request body of every h2load call.
func placeOrderBody(order *ordersv1.Order) ([]byte, error) {
	return grpcFrame(&ordersv1.PlaceOrderRequest{Order: order})
}
