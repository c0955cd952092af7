package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
)

// health is what the gateway knows of a backend's reachability, from the
// outcome of calls and of the optional probe. Calls read it with one
// atomic load; only changes take the lock.
type health struct {
	backend string // the backend's URL, for the log
	logger  *slog.Logger

	down atomic.Bool

	mu     sync.Mutex
	err    error  // why the backend is down
	outage uint64 // calls failed during the current outage
}

// Err returns nil while the backend is reachable (and before any call or
// probe has shown otherwise), and otherwise the error that showed it
// unreachable, such as a refused connection or a connection lost
// mid-call. A call that the backend answers, even with an error, shows it
// reachable again, as does a probe answered (see [WithHealthCheck]). A
// backend of several endpoints is reachable while one of them is, and
// unreachable when it has none (DNS resolved no address). The error names
// the backend's address: it is for operators and readiness checks, not
// for clients.
func (b *Backend) Err() error {
	set := b.set.Load()
	if len(set.all) == 0 {
		return fmt.Errorf("forward: backend %s: %w", b.name, errNoEndpoint)
	}
	var first error
	for _, e := range set.all {
		if !e.health.down.Load() {
			return nil
		}
		e.health.mu.Lock()
		err := e.health.err
		e.health.mu.Unlock()
		if err == nil {
			return nil
		}
		if first == nil {
			first = fmt.Errorf("forward: backend %s: %w", e.url, err)
		}
	}
	return first
}

// FailedCalls returns how many calls failed, since the backend was created,
// because it could not be reached or its connection broke: the calls that
// clients saw end with "backend unavailable", and the attempts that were
// retried on another endpoint. It only grows; use it as a counter.
func (b *Backend) FailedCalls() uint64 {
	n := b.failedGone.Load()
	for _, e := range b.set.Load().all {
		n += e.failures.Load()
	}
	return n
}

// Retries returns how many calls were sent again to another endpoint
// after the first found its endpoint unreachable (see [WithRetries]). It
// only grows; use it as a counter.
func (b *Backend) Retries() uint64 { return b.retries.Load() }

// callFailed records a call that failed because the backend could not be
// reached; the first one of an outage is logged.
func (h *health) callFailed(ctx context.Context, procedure string, err error) {
	h.setDown(ctx, err, true, slog.String("check", "call"), slog.String("procedure", procedure))
}

// setDown records that the backend could not be reached, by a call or by
// the probe; the first failure of an outage is logged.
func (h *health) setDown(ctx context.Context, err error, call bool, attrs ...slog.Attr) {
	h.mu.Lock()
	first := !h.down.Load()
	h.err = err
	if call {
		h.outage++
	}
	h.down.Store(true)
	h.mu.Unlock()
	if first && h.logger != nil {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "forward: backend unavailable",
			append([]slog.Attr{slog.String("backend", h.backend)}, append(attrs, slog.String("error", err.Error()))...)...)
	}
}

// reached records that the backend answered; the end of an outage is
// logged with the number of calls it failed.
func (h *health) reached(ctx context.Context, check string) {
	if !h.down.Load() {
		return
	}
	h.mu.Lock()
	if !h.down.Load() {
		h.mu.Unlock()
		return
	}
	failed := h.outage
	h.outage, h.err = 0, nil
	h.down.Store(false)
	h.mu.Unlock()
	if h.logger != nil {
		h.logger.LogAttrs(ctx, slog.LevelInfo, "forward: backend recovered",
			slog.String("backend", h.backend), slog.String("check", check), slog.Uint64("failed_calls", failed))
	}
}

// healthCheckProcedure is the standard gRPC health check, which most
// servers implement; a server that does not still answers (Unimplemented),
// which is all the probe needs.
const healthCheckProcedure = "/grpc.health.v1.Health/Check"

// probe checks endpoint e every interval until ctx is done; a change of
// outcome moves e in or out of the rotation.
func (b *Backend) probe(ctx context.Context, e *endpoint, interval, timeout time.Duration) {
	defer close(e.probeDone)
	client := connect.NewClient[Message, Message](e.pool, b.scheme+"://"+e.host+e.prefix+healthCheckProcedure,
		b.protocol.clientOption(), connect.WithCodec(protoCodec), connect.WithAcceptCompression("gzip", nil, nil))
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := check(ctx, client, timeout)
		switch {
		case ctx.Err() != nil:
			return // closed: the outcome means nothing
		case err != nil:
			e.health.setDown(ctx, err, false, slog.String("check", "probe"))
			if !e.probeDown.Swap(true) {
				b.refresh()
			}
		default:
			e.health.reached(ctx, "probe")
			if e.probeDown.Swap(false) {
				b.refresh()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// errNotServing is the answer of a backend that reports itself down.
var errNotServing = errors.New("health check: NOT_SERVING")

// check sends one health check and returns nil if the backend answered.
func check(ctx context.Context, client *connect.Client[Message, Message], timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := client.CallUnary(ctx, connect.NewRequest(&Message{})) // HealthCheckRequest{service: ""}
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("health check not answered within %v", timeout)
	case connect.CodeOf(err) == connect.CodeUnavailable || brokenConnection(err):
		return err
	default:
		return nil // answered, with an RPC error or an HTTP status: reachable
	}
	if servingStatus(res.Msg.Bytes()) == 2 {
		return errNotServing
	}
	return nil
}

// servingStatus reads the status field of a grpc.health.v1.HealthCheckResponse
// (0 when absent or unreadable).
func servingStatus(b []byte) uint64 {
	var status uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0
			}
			status, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0
		}
		b = b[m:]
	}
	return status
}
