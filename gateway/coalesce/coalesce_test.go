package coalesce_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis/portcullis/gateway/coalesce"
)

// countingConn counts the writes that reach a real TCP connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns the two ends of a TCP connection on 127.0.0.1, the
// dialing end counted, and a function that returns every byte the other
// end has read so far.
func tcpPair(t *testing.T) (*countingConn, func() []byte) {
	t.Helper()
	c, read, _ := tcpPeers(t)
	return c, read
}

// tcpPeers is tcpPair, and also returns the other end, for writing to
// the dialing end.
func tcpPeers(t *testing.T) (*countingConn, func() []byte, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { dialed.Close(); peer.Close() })
	var mu sync.Mutex
	var got bytes.Buffer
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := peer.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return &countingConn{Conn: dialed}, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(got.Bytes())
	}, peer
}

// started returns a coalesced connection on tcpPair that has written the
// client preface, the frames that wrote it, and what it wrote.
func started(t *testing.T) (*countingConn, func() []byte, *coalesce.Conn, *frames, []byte) {
	t.Helper()
	raw, read := tcpPair(t)
	c := coalesce.Client(raw)
	f := newFrames()
	start := f.preface(t)
	write(t, c, start)
	return raw, read, c, f, start
}

// waitFor waits until the peer has read want, and fails the test if it
// reads anything else.
func waitFor(t *testing.T, read func() []byte, want []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got := read()
		if bytes.Equal(got, want) {
			return
		}
		if len(got) >= len(want) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("peer read %d bytes, want the %d written, in order", len(read()), len(want))
}

// frames writes HTTP/2 frames with x/net's Framer and returns their bytes.
type frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newFrames() *frames {
	f := &frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

// take returns the bytes written since the last take.
func (f *frames) take() []byte {
	b := bytes.Clone(f.buf.Bytes())
	f.buf.Reset()
	return b
}

// block returns the header block of a gRPC request to path.
func (f *frames) block(path string) []byte {
	f.hb.Reset()
	for _, kv := range [][2]string{{":method", "POST"}, {":path", path}, {"content-type", "application/grpc"}} {
		_ = f.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	return bytes.Clone(f.hb.Bytes())
}

func (f *frames) headers(t *testing.T, stream uint32, endStream bool) []byte {
	t.Helper()
	block := f.block("/orders.v1.OrdersService/PlaceOrder")
	if err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block, EndHeaders: true, EndStream: endStream}); err != nil {
		t.Fatal(err)
	}
	return f.take()
}

// headersContinued is headers, its block split into a HEADERS frame and a
// CONTINUATION frame; END_STREAM is on the HEADERS frame, as RFC 9113
// §6.2 has it.
func (f *frames) headersContinued(t *testing.T, stream uint32, endStream bool) []byte {
	t.Helper()
	block := f.block("/orders.v1.OrdersService/SyncOrders")
	half := len(block) / 2
	if err := f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block[:half], EndStream: endStream}); err != nil {
		t.Fatal(err)
	}
	if err := f.fr.WriteContinuation(stream, true, block[half:]); err != nil {
		t.Fatal(err)
	}
	return f.take()
}

// window returns a SETTINGS frame that sets the initial stream window.
func (f *frames) window(t *testing.T, size uint32) []byte {
	t.Helper()
	if err := f.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 14}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: size}); err != nil {
		t.Fatal(err)
	}
	return f.take()
}

func (f *frames) data(t *testing.T, stream uint32, endStream bool, n int) []byte {
	t.Helper()
	if err := f.fr.WriteData(stream, endStream, bytes.Repeat([]byte{'x'}, n)); err != nil {
		t.Fatal(err)
	}
	return f.take()
}

func (f *frames) settings(t *testing.T) []byte {
	t.Helper()
	if err := f.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return f.take()
}

// preface returns what a client writes first: the client preface and its
// SETTINGS.
func (f *frames) preface(t *testing.T) []byte {
	t.Helper()
	return append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), f.settings(t)...)
}

func write(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	if n, err := c.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
}

// A request's header block waits for its body, and both go out in one
// write; a request without a body goes out at once.
func TestClientJoinsHeadersAndBody(t *testing.T) {
	t.Parallel()
	raw, read, c, f, start := started(t)
	var all []byte
	all = append(all, start...)
	for stream := uint32(1); stream <= 7; stream += 2 {
		before := raw.writes.Load()
		h := f.headers(t, stream, false)
		write(t, c, h)
		d := f.data(t, stream, true, 100)
		write(t, c, d)
		all = append(append(all, h...), d...)
		if got := raw.writes.Load() - before; got != 1 {
			t.Fatalf("stream %d: headers and body took %d writes, want 1", stream, got)
		}
	}
	before := raw.writes.Load()
	h := f.headers(t, 9, true) // no body: nothing to wait for
	write(t, c, h)
	all = append(all, h...)
	if got := raw.writes.Load() - before; got != 1 {
		t.Fatalf("a header block with END_STREAM took %d writes, want 1", got)
	}
	waitFor(t, read, all)
}

// A header block that nothing follows goes out by itself when the layer
// above flushes it, or after HoldFor when no one does.
func TestHeldHeadersGoOutAlone(t *testing.T) {
	t.Parallel()
	for _, flush := range []bool{true, false} {
		raw, read, c, f, start := started(t)
		h := f.headers(t, 1, false)
		write(t, c, h)
		if got := raw.writes.Load(); got != 1 {
			t.Fatalf("%d writes before the flush, want 1 (the preface)", got)
		}
		began := time.Now()
		if flush {
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := raw.writes.Load(); got != 2 {
				t.Fatalf("%d writes after Flush, want 2 (the preface, then the held block)", got)
			}
		}
		waitFor(t, read, append(start, h...))
		if waited := time.Since(began); !flush && (waited < coalesce.HoldFor/2 || waited > 10*coalesce.HoldFor) {
			t.Errorf("an unflushed block went out after %v, want about %v", waited, coalesce.HoldFor)
		}
		if got := raw.writes.Load(); got != 2 {
			t.Fatalf("%d writes, want 2 (the preface, then the held block by itself)", got)
		}
		d := f.data(t, 1, true, 10)
		write(t, c, d)
		waitFor(t, read, append(append(start, h...), d...))
	}
}

// Whatever the writes' sizes, the peer reads the same bytes in the same
// order, and a write is held exactly when it ends where a header block
// without END_STREAM ends (in a HEADERS frame or in the CONTINUATION of
// one).
func TestSplitWritesKeepTheBytes(t *testing.T) {
	t.Parallel()
	f := newFrames()
	stream := f.preface(t)
	first := len(stream)
	opens := map[int]bool{} // offsets where a header block that opens a body ends
	for id := uint32(1); id < 60; id += 2 {
		endStream := id%3 == 0
		if id%5 == 0 {
			stream = append(stream, f.headersContinued(t, id, endStream)...)
		} else {
			stream = append(stream, f.headers(t, id, endStream)...)
		}
		if endStream {
			continue
		}
		opens[len(stream)] = true
		stream = append(stream, f.data(t, id, false, int(id)*37)...)
		stream = append(stream, f.data(t, id, true, 0)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		raw, read := tcpPair(t)
		c := coalesce.Client(raw)
		write(t, c, stream[:first])
		for at := first; at < len(stream); {
			n := 1 + rng.IntN(min(len(stream)-at, 200))
			if round%2 == 0 {
				n = min(len(stream)-at, 1+rng.IntN(3))
			}
			before := raw.writes.Load()
			write(t, c, stream[at:at+n])
			at += n
			if held := raw.writes.Load() == before; held != opens[at] {
				t.Fatalf("round %d: the write ending at byte %d was held: %v, want %v", round, at, held, opens[at])
			}
		}
		waitFor(t, read, stream)
	}
}

// A DATA frame larger than the kept buffer goes out after the held block,
// its bytes in order.
func TestLargeBodyAfterHeldHeaders(t *testing.T) {
	t.Parallel()
	_, read, c, f, start := started(t)
	h := f.headers(t, 1, false)
	write(t, c, h)
	d := f.data(t, 1, true, 16<<10)
	write(t, c, d)
	waitFor(t, read, append(append(start, h...), d...))
}

// While the backend's initial stream window is 0, no body can follow a
// request's headers before the backend has seen them: nothing is held.
// A window granted again turns holding back on. The SETTINGS are read one
// byte at a time, as a read may split them anywhere.
func TestNoHoldWhileTheBackendGrantsNoWindow(t *testing.T) {
	t.Parallel()
	raw, _, peer := tcpPeers(t)
	c := coalesce.Client(raw)
	f := newFrames()
	write(t, c, f.preface(t))
	readSettings := func(settings []byte) {
		t.Helper()
		if _, err := peer.Write(settings); err != nil {
			t.Fatal(err)
		}
		for range settings {
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	readSettings(f.window(t, 0))
	before := raw.writes.Load()
	write(t, c, f.headers(t, 1, false))
	if got := raw.writes.Load() - before; got != 1 {
		t.Fatalf("with a window of 0, the headers took %d writes, want 1 (not held)", got)
	}
	readSettings(f.window(t, 1<<16))
	before = raw.writes.Load()
	write(t, c, f.headers(t, 3, false))
	if got := raw.writes.Load() - before; got != 0 {
		t.Fatalf("with a window again, the headers took %d writes, want 0 (held)", got)
	}
}

// A connection that does not start with the client preface (an HTTP/1.1
// request) is passed through: every write goes out as it is.
func TestHTTP1PassesThrough(t *testing.T) {
	t.Parallel()
	raw, read := tcpPair(t)
	c := coalesce.Client(raw)
	f := newFrames()
	req := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	write(t, c, req)
	h := f.headers(t, 1, false) // bytes that would be held on HTTP/2
	write(t, c, h)
	if got := raw.writes.Load(); got != 2 {
		t.Fatalf("%d writes, want 2", got)
	}
	waitFor(t, read, append(req, h...))
}

// Closing a connection drops what it holds, and every later write fails
// with net.ErrClosed.
func TestCloseDropsWhatIsHeld(t *testing.T) {
	t.Parallel()
	_, read, c, f, start := started(t)
	write(t, c, f.headers(t, 1, false))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(f.data(t, 1, true, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
	time.Sleep(2 * coalesce.HoldFor)
	waitFor(t, read, start)
}

// Close returns at once though a write is blocked on a peer that does not
// read, and that write fails.
func TestCloseDoesNotWaitForABlockedWrite(t *testing.T) {
	t.Parallel()
	ours, theirs := net.Pipe() // a write blocks until the other end reads
	defer theirs.Close()
	c := coalesce.Client(ours)
	preface := newFrames().preface(t)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(preface)
		wrote <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the write block
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the blocked write")
	}
	if err := <-wrote; err == nil {
		t.Fatal("the blocked write succeeded after Close, want an error")
	}
}

// Through net/http's own HTTP/2 client and server on h2c, a unary POST
// costs the client one write where it costs two unwrapped; the server's
// writes do not change, and every answer is whole.
func TestNetHTTPWritesFewer(t *testing.T) {
	t.Parallel()
	const calls = 50
	plain := netHTTPWrites(t, false, calls)
	joined := netHTTPWrites(t, true, calls)
	t.Logf("writes per call, client/server: unwrapped %.2f/%.2f, coalesced %.2f/%.2f",
		float64(plain.client)/calls, float64(plain.server)/calls, float64(joined.client)/calls, float64(joined.server)/calls)
	// A block held a moment before the timer fires goes out alone: allow
	// a few.
	const fewer = calls * 9 / 10
	if joined.client > plain.client-fewer {
		t.Errorf("client: %d writes coalesced, %d unwrapped; want about one fewer per call", joined.client, plain.client)
	}
	if d := joined.server - plain.server; d > calls/10 || d < -calls/10 {
		t.Errorf("server: %d writes with the client coalesced, %d without; want about the same", joined.server, plain.server)
	}
}

type writeCounts struct{ client, server int64 }

// countingListener counts the writes of the connections it accepts.
type countingListener struct {
	net.Listener
	conns chan *countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return cc, nil
}

// netHTTPWrites makes calls sequential unary POSTs over one h2c connection,
// after one that opens it, and counts the writes of each side during them.
func netHTTPWrites(t *testing.T, wrap bool, calls int) writeCounts {
	t.Helper()
	call, counts := h2cPair(t, wrap)
	call()
	time.Sleep(20 * time.Millisecond) // let the opening SETTINGS and ACKs settle
	c0, s0 := counts()
	for range calls {
		call()
	}
	time.Sleep(20 * time.Millisecond)
	c1, s1 := counts()
	return writeCounts{client: c1 - c0, server: s1 - s0}
}

// h2cPair starts net/http's HTTP/2 server on h2c, with an echo handler
// that sets a trailer, and a client of it, its connection coalesced when
// wrap. call makes a unary POST of 100 bytes and checks the answer;
// counts returns the writes each side's connection has made so far (zero
// before the first call).
func h2cPair(tb testing.TB, wrap bool) (call func(), counts func() (client, server int64)) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cl := &countingListener{Listener: ln, conns: make(chan *countingConn, 4)}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: &protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Trailer", "X-Length")
			_, _ = w.Write(body)
			w.Header().Set("X-Length", "ok")
		}),
	}
	go srv.Serve(cl)
	tb.Cleanup(func() { srv.Close() })

	dialed := make(chan *countingConn, 4)
	var dialer net.Dialer
	tr := &http.Transport{
		Protocols: &protocols,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{Conn: c}
			dialed <- cc
			if wrap {
				return coalesce.Client(cc), nil
			}
			return cc, nil
		},
	}
	tb.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/"
	payload := strings.Repeat("p", 100)
	var c, s *countingConn
	call = func() {
		res, err := client.Post(url, "application/octet-stream", strings.NewReader(payload))
		if err != nil {
			tb.Fatal(err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || string(got) != payload || res.Trailer.Get("X-Length") != "ok" || res.ProtoMajor != 2 {
			tb.Fatalf("answer %q, %v, trailer %q, HTTP/%d; want the payload back over HTTP/2", got, err, res.Trailer.Get("X-Length"), res.ProtoMajor)
		}
		if c == nil {
			c, s = <-dialed, <-cl.conns
		}
	}
	counts = func() (int64, int64) {
		if c == nil {
			return 0, 0
		}
		return c.writes.Load(), s.writes.Load()
	}
	return call, counts
}

// BenchmarkUnaryPOST measures a unary POST of 100 bytes through net/http's
// HTTP/2 client and server on h2c, both ends in the process, with their
// connections unwrapped and coalesced; writes/op counts both sides'
// write syscalls.
func BenchmarkUnaryPOST(b *testing.B) {
	for _, wrap := range []bool{false, true} {
		name := "unwrapped"
		if wrap {
			name = "coalesced"
		}
		b.Run(name, func(b *testing.B) {
			call, counts := h2cPair(b, wrap)
			call()
			c0, s0 := counts()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				call()
			}
			b.StopTimer()
			c1, s1 := counts()
			b.ReportMetric(float64(c1-c0+s1-s0)/float64(b.N), "writes/op")
		})
	}
}

// windowOnHeaders serves HTTP/2 on ln as a backend that grants no stream
// window until it has seen a request's headers (SETTINGS_INITIAL_WINDOW_SIZE
// 0, then a WINDOW_UPDATE per stream), and answers each request with a 204
// once its body has ended.
func windowOnHeaders(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}) != nil {
		return
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch frame := frame.(type) {
		case *http2.SettingsFrame:
			if !frame.IsAck() {
				err = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			err = fr.WriteWindowUpdate(frame.StreamID, 1<<16)
		case *http2.DataFrame:
			if frame.StreamEnded() {
				block.Reset()
				_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "204"})
				err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: frame.StreamID, BlockFragment: block.Bytes(), EndHeaders: true, EndStream: true})
			}
		}
		if err != nil {
			return
		}
	}
}

// Through net/http's client, a backend that grants a stream's window only
// once it has seen the stream's headers gets them at once: no request
// waits for HoldFor.
func TestBackendThatWaitsForHeaders(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go windowOnHeaders(ln)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	var dialer net.Dialer
	tr := &http.Transport{Protocols: &protocols, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return coalesce.Client(c), nil
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var waits []time.Duration
	for range 7 {
		began := time.Now()
		res, err := client.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d, want 204", res.StatusCode)
		}
		waits = append(waits, time.Since(began))
	}
	slices.Sort(waits)
	if median := waits[len(waits)/2]; median >= coalesce.HoldFor*3/4 {
		t.Errorf("a call took %v (median of %v), want under three quarters of HoldFor (%v): its headers waited for the timer", median, waits, coalesce.HoldFor)
	}
}
