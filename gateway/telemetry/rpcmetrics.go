package telemetry

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
)

// rpcDurations are the RPC duration histograms of the semantic
// conventions, rpc.server.call.duration for the calls the gateway serves
// and rpc.client.call.duration for the calls it forwards, with the
// attributes otelconnect gives them: rpc.system.name, rpc.method,
// rpc.response.status_code, error.type on a failure, and server.address
// and server.port on the client side.
//
// The gateway records them itself, where otelconnect (which still makes
// the spans) would build a new attribute set per call and side: sorted,
// deduplicated and allocated, then hashed again by the SDK. Here each set
// is built once, on the first call of its procedure, protocol and code
// (and backend address), and reused; a call records with a lookup.
type rpcDurations struct {
	server metric.Float64Histogram
	client metric.Float64Histogram
}

func (d *rpcDurations) init(m metric.Meter) error {
	server, client := rpcconv.ServerCallDuration{}, rpcconv.ClientCallDuration{}
	var err, e error
	d.server, e = m.Float64Histogram(server.Name(), metric.WithUnit(server.Unit()),
		metric.WithDescription(server.Description()), metric.WithExplicitBucketBoundaries(rpcBuckets...))
	err = errors.Join(err, e)
	d.client, e = m.Float64Histogram(client.Name(), metric.WithUnit(client.Unit()),
		metric.WithDescription(client.Description()), metric.WithExplicitBucketBoundaries(rpcBuckets...))
	return errors.Join(err, e)
}

// recordServer records a served call of p that ended with err.
func (d *rpcDurations) recordServer(ctx context.Context, p *procedure, protocol string, err error, elapsed time.Duration) {
	d.server.Record(ctx, elapsed.Seconds(), p.server.option(protocol, err))
}

// recordClient records a forwarded call of p to the backend at addr that
// ended with err.
func (d *rpcDurations) recordClient(ctx context.Context, p *procedure, protocol, addr string, err error, elapsed time.Duration) {
	d.client.Record(ctx, elapsed.Seconds(), p.clientSets(addr).option(protocol, err))
}

// The protocols whose sets are kept: those connect names, as
// rpc.system.name has them.
const (
	systemGRPC = iota
	systemConnect
	numSystems
)

// numStatuses are the codes a set is kept for: OK, and connect's codes 1
// to 16.
const numStatuses = 17

// durationSets are the measurement options of one procedure's durations on
// one side, built on first use.
type durationSets struct {
	base []attribute.KeyValue // rpc.method, and the backend's address on the client side
	sets [numSystems][numStatuses]atomic.Pointer[metric.RecordOption]
}

func newDurationSets(base ...attribute.KeyValue) *durationSets {
	return &durationSets{base: base}
}

// option returns the measurement option of a call of protocol that ended
// with err.
func (s *durationSets) option(protocol string, err error) metric.RecordOption {
	system := rpcSystem(protocol)
	i := systemGRPC
	switch system {
	case "grpc":
	case "connectrpc":
		i = systemConnect
	default:
		return s.build(system, err)
	}
	code := connect.CodeOf(err)
	if err == nil {
		code = 0
	} else if connect.IsNotModifiedError(err) || int(code) >= numStatuses {
		return s.build(system, err)
	}
	slot := &s.sets[i][code]
	if o := slot.Load(); o != nil {
		return *o
	}
	o := s.build(system, err)
	slot.Store(&o)
	return o
}

// build makes the measurement option of a call of system that ended with
// err, as otelconnect labels it.
func (s *durationSets) build(system string, err error) metric.RecordOption {
	attrs := make([]attribute.KeyValue, 0, len(s.base)+4)
	attrs = append(attrs, semconv.RPCSystemNameKey.String(system))
	attrs = append(attrs, s.base...)
	switch {
	case err == nil:
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(statusCode(0)))
	case connect.IsNotModifiedError(err):
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(statusCode(0)),
			semconv.HTTPResponseStatusCodeKey.Int(304))
	default:
		code := statusCode(connect.CodeOf(err))
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(code), semconv.ErrorTypeKey.String(code))
	}
	return metric.WithAttributeSet(attribute.NewSet(attrs...))
}

// maxBackendAddrs bounds the backend addresses a procedure keeps sets for;
// past it, a call's set is built for it alone.
const maxBackendAddrs = 64

// clientSets returns p's client-side sets for the backend at addr.
func (p *procedure) clientSets(addr string) *durationSets {
	return p.clients.get(addr, maxBackendAddrs, func() *durationSets {
		return newDurationSets(append([]attribute.KeyValue{p.method}, addressAttributes(addr)...)...)
	})
}

// addressAttributes are server.address and server.port of addr ("host" or
// "host:port"), as otelconnect sets them; none for no address.
func addressAttributes(addr string) []attribute.KeyValue {
	if addr == "" {
		return nil
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			return []attribute.KeyValue{semconv.ServerAddressKey.String(host), semconv.ServerPortKey.Int(n)}
		}
	}
	return []attribute.KeyValue{semconv.ServerAddressKey.String(addr)}
}

// timedClientConn is a forwarded stream whose duration is recorded when it
// ends: when its response is closed, or its context is done. Its status is
// the last error a send or a receive met, other than io.EOF, as otelconnect
// has it.
type timedClientConn struct {
	connect.StreamingClientConn
	mu   sync.Mutex
	err  error
	stop func() bool // stops the record on the context's end
	done func()      // records, once
}

func (t *Telemetry) timeClientStream(ctx context.Context, spec connect.Spec, conn connect.StreamingClientConn) connect.StreamingClientConn {
	start := time.Now()
	p := t.procedures.get(spec.Procedure)
	c := &timedClientConn{StreamingClientConn: conn}
	var once sync.Once
	c.done = func() {
		once.Do(func() {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			peer := conn.Peer()
			t.rpc.recordClient(ctx, p, peer.Protocol, peer.Addr, err, time.Since(start))
		})
	}
	c.stop = context.AfterFunc(ctx, c.done)
	return c
}

// note keeps err as the stream's status, unless it is the end of a stream.
func (c *timedClientConn) note(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return err
}

// Send sends a message, noting its error.
func (c *timedClientConn) Send(msg any) error { return c.note(c.StreamingClientConn.Send(msg)) }

// Receive receives a message, noting its error.
func (c *timedClientConn) Receive(msg any) error {
	return c.note(c.StreamingClientConn.Receive(msg))
}

// CloseResponse closes the response and records the stream.
func (c *timedClientConn) CloseResponse() error {
	err := c.StreamingClientConn.CloseResponse()
	c.stop()
	c.done()
	return err
}
