package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/portcullis/portcullis/gateway/token"
)

// An experiment, not part of the gateway: a frame-level HTTP/2 relay of
// gRPC calls, on x/net/http2's Framer and HPACK, and nothing else of
// net/http. It measures what the last candidate of the request path would
// buy: no goroutine per stream, per request or per flush, and every frame
// that one read brings written to the other side in one write.
//
// Each caller's connection (h2c, prior knowledge) gets a connection of its
// own to the backend, and the two are relayed by two goroutines, one
// reading each side and writing to the other. A stream keeps its number
// on both connections, so that most frames pass as they came: DATA (with
// its padding, so that both hops count the same bytes), RST_STREAM and
// WINDOW_UPDATE. Flow control is the backend's and the caller's, end to
// end: the relay advertises to each side the other's initial window and
// forwards their window updates, so it buffers nothing beyond one read;
// it credits the caller's connection window itself only for the DATA it
// drops (of streams refused, reset or closed). Header blocks are decoded and encoded again (HPACK
// state is the connection's), and the caller's HEADERS are decided by the
// gateway's own policy code as in relay.go: authz.Check with its cache,
// the in-memory limiter, the identity headers, the credentials and the
// reserved headers dropped, in the trailers too. A refusal is a
// trailers-only gRPC response and a RST_STREAM(NO_ERROR); the frames in
// flight on it are dropped. GOAWAY is passed on.
//
// What it leaves out, as an experiment: no limit on connections, and no
// idle or write deadline once set up, so a caller that stops reading
// stalls its own backend connection; SETTINGS and PING are answered on
// each hop, so a backend lowering its initial window is not waited for
// and a caller's PINGs measure the relay, not the backend; the decision
// runs on the caller's reading goroutine, so a fresh token's verification
// delays that connection's other streams (as HAProxy's event loop does);
// a caller lowering its initial window below what the backend was told is
// not waited for; it speaks gRPC only (a Connect refusal would be DATA the
// relay sends itself, which the pass-through flow control does not count).
//
//	loadtest framerelay -listen ADDR -backend URL -jwks FILE

// serveFrameRelay relays the gRPC calls that ln accepts to backend, the
// URL of an h2c server, until ctx is done.
func serveFrameRelay(ctx context.Context, ln net.Listener, backend, jwksFile string) error {
	pol, err := newPolicy(ctx, jwksFile)
	if err != nil {
		_ = ln.Close()
		return err
	}
	return serveFrames(ctx, ln, backend, pol)
}

// serveFrameRelayOpen is serveFrameRelay without the policy: every
// request of every kind goes to the backend. It is for HTTP/2 conformance
// runs, whose requests carry no token:
//
//	loadtest framerelay-open -listen 127.0.0.1:8443 -backend http://127.0.0.1:8081 &
//	h2spec -p 8443
func serveFrameRelayOpen(ctx context.Context, ln net.Listener, backend, _ string) error {
	return serveFrames(ctx, ln, backend, nil)
}

// serveFrames relays the connections that ln accepts to backend, deciding
// their calls with pol, until ctx is done.
func serveFrames(ctx context.Context, ln net.Listener, backend string, pol *policy) error {
	addr, err := h2cHost(backend)
	if err != nil {
		_ = ln.Close()
		return err
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			relayFrames(ctx, pol, c, addr)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
}

// h2cHost is the host:port of an http:// backend URL, for the relays
// that dial it themselves.
func h2cHost(backend string) (string, error) {
	u, err := url.Parse(backend)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("backend %q: want http://HOST:PORT, an h2c server", backend)
	}
	return u.Host, nil
}

// Limits of the relay's own.
const (
	relayMaxHeaderList = 64 << 10 // bytes of a header list, either side
	relayRing          = 64       // streams remembered once closed or reset, to answer their frames
	relayMaxStreams    = 250      // streams a caller may open at once, unless the backend says
	relayDialTimeout   = 5 * time.Second
	relaySetupTimeout  = 10 * time.Second // for each side's preface and SETTINGS
)

// h2side is one connection of a relayed pair: its reader, and its writer,
// which both goroutines of the pair use.
type h2side struct {
	conn net.Conn
	br   *bufio.Reader
	rd   *http2.Framer

	mu    sync.Mutex // guards the writer: frames, HPACK state and buffer
	bw    *bufio.Writer
	wr    *http2.Framer
	enc   *hpack.Encoder
	block bytes.Buffer
	// maxFrame is the largest frame the peer takes, for header blocks;
	// DATA frames pass at the size they came, which is at most the
	// default that both sides take.
	maxFrame uint32
	dirty    bool
}

func newH2Side(c net.Conn) *h2side {
	s := &h2side{conn: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10), maxFrame: 16 << 10}
	s.rd = http2.NewFramer(nil, s.br)
	s.rd.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	s.rd.MaxHeaderListSize = relayMaxHeaderList
	s.rd.SetReuseFrames()
	s.rd.SetMaxReadFrameSize(16 << 10) // the default, which the relay does not raise
	s.wr = http2.NewFramer(s.bw, nil)
	s.enc = hpack.NewEncoder(&s.block)
	return s
}

// write runs f with the writer, and marks it to be flushed.
func (s *h2side) write(f func(*http2.Framer) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	return f(s.wr)
}

// flush writes out what is buffered, if anything is.
func (s *h2side) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	s.dirty = false
	return s.bw.Flush()
}

// headers encodes fields into one header block, as HEADERS and
// CONTINUATION frames of stream id.
func (s *h2side) headers(id uint32, endStream bool, fields func(enc *hpack.Encoder)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
	s.block.Reset()
	fields(s.enc)
	block := s.block.Bytes()
	first := true
	for first || len(block) > 0 {
		frag := block[:min(len(block), int(s.maxFrame))]
		block = block[len(frag):]
		var err error
		if first {
			err = s.wr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = s.wr.WriteContinuation(id, len(block) == 0, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// settingsOf reads a side's first frame, which must be SETTINGS.
func (s *h2side) settingsOf() (*http2.SettingsFrame, error) {
	f, err := s.rd.ReadFrame()
	if err != nil {
		return nil, err
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return nil, fmt.Errorf("first frame %v, want SETTINGS", f.Header().Type)
	}
	return sf, nil
}

// apply takes the peer's settings that bear on what the relay writes to
// it, and returns those to pass on to the other side of the pair; the
// caller acknowledges them.
func (s *h2side) apply(sf *http2.SettingsFrame, passOn ...http2.SettingID) ([]http2.Setting, error) {
	var out []http2.Setting
	err := sf.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingMaxFrameSize:
			s.mu.Lock()
			s.maxFrame = st.Val
			s.mu.Unlock()
		case http2.SettingHeaderTableSize:
			s.mu.Lock()
			s.enc.SetMaxDynamicTableSizeLimit(st.Val)
			s.mu.Unlock()
		}
		if slices.Contains(passOn, st.ID) {
			// The last value of a setting is the one that holds: it alone
			// passes on (Go's HTTP/2 server refuses a frame that repeats one).
			if i := slices.IndexFunc(out, func(o http2.Setting) bool { return o.ID == st.ID }); i >= 0 {
				out[i].Val = st.Val
			} else {
				out = append(out, st)
			}
		}
		return nil
	})
	return out, err
}

// ack acknowledges the side's SETTINGS.
func (s *h2side) ack() error {
	return s.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
}

// pair is a caller's connection and its backend connection.
type pair struct {
	pol     *policy // nil: every call is admitted, for conformance runs
	ctx     context.Context
	caller  *h2side
	backend *h2side

	closeOnce sync.Once

	mu      sync.Mutex                // guards what follows, which both readers change
	streams map[uint32]*relayedStream // the caller's streams that the backend has
	// closed are streams closed lately by both sides' END_STREAM or by
	// the caller's RST_STREAM, whose later frames are STREAM_CLOSED errors;
	// reset are those the relay reset towards the caller (its refusals and
	// the backend's resets), whose frames in flight it ignores (RFC 9113
	// section 5.1).
	closed, reset idRing
	maxStreams    uint32 // the caller's limit, the backend's
	initial       int64  // the caller's initial stream window
	backendLast   uint32 // the last stream of the backend's GOAWAY, else the largest id

	// Of the caller's reader alone.
	lastID uint32 // the highest stream the caller opened
}

// relayedStream is the state of a stream that both sides have.
type relayedStream struct {
	callerDone, backendDone bool  // END_STREAM seen from each side
	length                  int64 // the request's content-length, or -1
	received                int64 // bytes of DATA from the caller
	// window is the caller's flow-control window for the stream, which
	// the relay keeps only to refuse one that overflows (RFC 9113 6.9.1).
	window int64
}

// idRing remembers the last streams added to it.
type idRing struct {
	ids  [relayRing]uint32
	next int
}

func (r *idRing) add(id uint32) {
	r.ids[r.next%relayRing] = id
	r.next++
}

func (r *idRing) has(id uint32) bool {
	for _, x := range r.ids {
		if x == id && id != 0 {
			return true
		}
	}
	return false
}

// stream returns a stream that both sides have, or nil.
func (p *pair) stream(id uint32) *relayedStream {
	st, _, _ := p.look(id)
	return st
}

// look finds what the pair knows of a stream of the caller's, in one
// look: the stream both sides have, or whether it was reset by the relay
// (its frames in flight are ignored) or closed otherwise, lately.
func (p *pair) look(id uint32) (st *relayedStream, wasReset, wasClosed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st = p.streams[id]; st != nil {
		return st, false, false
	}
	return nil, p.reset.has(id), p.closed.has(id)
}

// ended records a side's END_STREAM; a stream ended by both is closed.
func (p *pair) ended(id uint32, byCaller bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.streams[id]
	if st == nil {
		return
	}
	if byCaller {
		st.callerDone = true
	} else {
		st.backendDone = true
	}
	if st.callerDone && st.backendDone {
		delete(p.streams, id)
		p.closed.add(id)
	}
}

// What grow found.
const (
	windowOK = iota
	windowGone
	windowOverflow
)

// maxWindow is the largest flow-control window HTTP/2 allows.
const maxWindow = 1<<31 - 1

// grow changes the caller's window for a stream by n bytes.
func (p *pair) grow(id uint32, n int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.streams[id]
	if st == nil {
		return windowGone
	}
	if st.window += n; st.window > maxWindow {
		return windowOverflow
	}
	return windowOK
}

// forget closes a stream that a side reset: the caller (its later frames
// are errors), or the relay or the backend (the caller's frames in flight
// are ignored).
func (p *pair) forget(id uint32, byCaller bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.streams[id]; ok {
		delete(p.streams, id)
		if byCaller {
			p.closed.add(id)
		} else {
			p.reset.add(id)
		}
	}
}

// resetBoth ends a stream that both sides have, for a fault of the
// caller's: the caller gets code, the backend CANCEL.
func (p *pair) resetBoth(id uint32, code http2.ErrCode) error {
	p.forget(id, false)
	_ = p.backend.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeCancel) })
	return p.caller.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, code) })
}

// relayFrames relays the HTTP/2 connection c to a new connection to the
// backend at addr, until either ends.
func relayFrames(ctx context.Context, pol *policy, c net.Conn, addr string) {
	defer c.Close()
	p := &pair{pol: pol, ctx: ctx, caller: newH2Side(c), streams: map[uint32]*relayedStream{}, maxStreams: relayMaxStreams, initial: 65535, backendLast: 1<<31 - 1}
	_ = c.SetReadDeadline(time.Now().Add(relaySetupTimeout))
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(p.caller.br, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	csf, err := p.caller.settingsOf()
	if err != nil {
		p.caller.goAway(0, http2.ErrCodeProtocol)
		return
	}
	b, err := (&net.Dialer{Timeout: relayDialTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		p.caller.goAway(0, http2.ErrCodeRefusedStream)
		return
	}
	defer b.Close()
	p.backend = newH2Side(b)
	_ = b.SetReadDeadline(time.Now().Add(relaySetupTimeout))

	// The backend hears the caller's window, and no pushes.
	toBackend, err := p.caller.apply(csf, http2.SettingInitialWindowSize)
	if err != nil {
		p.caller.goAway(0, http2.ErrCodeProtocol)
		return
	}
	_, _ = p.adopt(p.caller, toBackend) // no stream is open yet
	if err := p.backend.write(func(w *http2.Framer) error {
		if _, err := io.WriteString(p.backend.bw, http2.ClientPreface); err != nil {
			return err
		}
		return w.WriteSettings(append(toBackend, http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: relayMaxHeaderList})...)
	}); err != nil || p.backend.flush() != nil {
		p.caller.goAway(0, http2.ErrCodeRefusedStream)
		return
	}
	bsf, err := p.backend.settingsOf()
	if err != nil {
		p.caller.goAway(0, http2.ErrCodeRefusedStream)
		return
	}
	// The caller hears the backend's window and stream limit.
	toCaller, err := p.backend.apply(bsf, http2.SettingInitialWindowSize, http2.SettingMaxConcurrentStreams)
	if err != nil {
		p.caller.goAway(0, http2.ErrCodeRefusedStream)
		return
	}
	if limited, _ := p.adopt(p.backend, toCaller); !limited {
		toCaller = append(toCaller, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: p.maxStreams})
	}
	// Each side's first frame from the relay is its SETTINGS.
	if err := p.caller.write(func(w *http2.Framer) error {
		return w.WriteSettings(append(toCaller, http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: relayMaxHeaderList})...)
	}); err != nil || p.caller.ack() != nil || p.backend.ack() != nil || p.caller.flush() != nil || p.backend.flush() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	_ = b.SetReadDeadline(time.Time{})

	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pump(p.backend, p.caller, p.fromBackend)
	}()
	p.pump(p.caller, p.backend, p.fromCaller)
	<-done
}

// pump reads from's frames and hands each to handle, flushing both sides
// whenever what was read has been handled, until from's connection fails;
// then it closes both.
func (p *pair) pump(from, to *h2side, handle func(http2.Frame) error) {
	defer p.close()
	for {
		f, err := from.rd.ReadFrame()
		var se http2.StreamError
		if errors.As(err, &se) {
			// A stream's bad header block (HPACK's state is still whole):
			// that stream alone is reset, on both hops.
			switch {
			case from == p.caller && se.StreamID%2 == 0:
				p.caller.goAway(p.lastID, http2.ErrCodeProtocol)
				return
			case from == p.caller && se.StreamID > p.lastID:
				p.lastID = se.StreamID
				p.refuseStream(se.StreamID, se.Code)
			case from == p.caller:
				if p.stream(se.StreamID) != nil {
					_ = p.resetBoth(se.StreamID, se.Code)
				}
			default: // the backend's fault, not the caller's
				p.forget(se.StreamID, false)
				_ = p.caller.write(func(w *http2.Framer) error { return w.WriteRSTStream(se.StreamID, http2.ErrCodeInternal) })
				_ = p.backend.write(func(w *http2.Framer) error { return w.WriteRSTStream(se.StreamID, se.Code) })
			}
		} else if err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				p.goAway(from, http2.ErrCode(ce))
			} else if errors.Is(err, http2.ErrFrameTooLarge) {
				p.goAway(from, http2.ErrCodeFrameSize)
			}
			return
		} else if err := handle(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				p.goAway(from, http2.ErrCode(ce))
			}
			return
		}
		if from.br.Buffered() == 0 {
			if to.flush() != nil || from.flush() != nil {
				return
			}
		}
	}
}

// close ends both connections of the pair, once.
func (p *pair) close() {
	p.closeOnce.Do(func() {
		_ = p.caller.conn.Close()
		_ = p.backend.conn.Close()
	})
}

// goAway tells the side the connection ends with code, as best it can;
// last is the highest of its streams that may have been processed.
func (s *h2side) goAway(last uint32, code http2.ErrCode) {
	_ = s.write(func(w *http2.Framer) error { return w.WriteGoAway(last, code, nil) })
	_ = s.flush()
}

// goAway ends the pair for a fault of from's, on from's reading goroutine:
// the caller hears the last stream it opened, the backend none.
func (p *pair) goAway(from *h2side, code http2.ErrCode) {
	var last uint32
	if from == p.caller {
		last = p.lastID
	}
	from.goAway(last, code)
}

// fromCaller handles one frame of the caller's, as RFC 9113's stream
// states ask: frames of idle streams end the connection, those of closed
// streams are STREAM_CLOSED errors, and those in flight on a stream the
// relay refused are dropped.
func (p *pair) fromCaller(f http2.Frame) error {
	id := f.Header().StreamID
	if id > p.lastID {
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if id%2 == 0 {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			p.lastID = id
			return p.admit(f)
		case *http2.PriorityFrame:
			if f.StreamDep == id {
				p.refuseStream(id, http2.ErrCodeProtocol)
			}
			return nil
		case *http2.DataFrame, *http2.WindowUpdateFrame, *http2.RSTStreamFrame:
			if id != 0 {
				return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
			}
		}
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		st, wasReset, wasClosed := p.look(id)
		switch {
		case wasReset:
			return nil
		case wasClosed:
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		case st == nil:
			return http2.ConnectionError(http2.ErrCodeProtocol) // a new stream below the last
		case st.callerDone:
			return p.resetBoth(id, http2.ErrCodeStreamClosed)
		case !f.StreamEnded() || len(f.PseudoFields()) > 0 || st.length >= 0 && st.received != st.length:
			return p.resetBoth(id, http2.ErrCodeProtocol) // not trailers
		}
		p.ended(id, true)
		return p.backend.headers(id, true, func(enc *hpack.Encoder) {
			for _, hf := range f.Fields {
				// Trailers are headers too: no credentials or reserved names.
				if p.pol == nil || forwardedKey(hf.Name) {
					_ = enc.WriteField(hf)
				}
			}
		})
	case *http2.DataFrame:
		st, wasReset, _ := p.look(id)
		if wasReset {
			return p.credit(f.Length)
		}
		if st == nil || st.callerDone {
			if err := p.credit(f.Length); err != nil {
				return err
			}
			if st != nil {
				return p.resetBoth(id, http2.ErrCodeStreamClosed)
			}
			return p.caller.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeStreamClosed) })
		}
		st.received += int64(len(f.Data()))
		if st.length >= 0 && (st.received > st.length || f.StreamEnded() && st.received != st.length) {
			if err := p.credit(f.Length); err != nil {
				return err
			}
			return p.resetBoth(id, http2.ErrCodeProtocol)
		}
		if f.StreamEnded() {
			p.ended(id, true)
		}
		return relayData(p.backend, f)
	case *http2.WindowUpdateFrame:
		if id != 0 {
			switch p.grow(id, int64(f.Increment)) {
			case windowGone:
				return nil // closed: the backend has no window for it
			case windowOverflow:
				return p.resetBoth(id, http2.ErrCodeFlowControl)
			}
		}
		return p.backend.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(id, f.Increment) })
	case *http2.RSTStreamFrame:
		if p.stream(id) == nil {
			return nil
		}
		p.forget(id, true)
		return p.backend.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, f.ErrCode) })
	case *http2.PriorityFrame:
		if f.StreamDep == id && p.stream(id) != nil {
			return p.resetBoth(id, http2.ErrCodeProtocol)
		}
	case *http2.SettingsFrame:
		return p.settings(p.caller, p.backend, f, http2.SettingInitialWindowSize)
	case *http2.PingFrame:
		return answerPing(p.caller, f)
	case *http2.GoAwayFrame:
		return p.backend.write(func(w *http2.Framer) error { return w.WriteGoAway(f.LastStreamID, f.ErrCode, nil) })
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // a client never pushes
	}
	return nil // unknown frames
}

// credit gives the caller back the connection window of DATA that the
// backend will not see.
func (p *pair) credit(n uint32) error {
	if n == 0 {
		return nil
	}
	return p.caller.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, n) })
}

// fromBackend handles one frame of the backend's: each passes on, on the
// same stream, but for those of the connection itself.
func (p *pair) fromBackend(f http2.Frame) error {
	id := f.Header().StreamID
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		if f.StreamEnded() {
			p.ended(id, false)
		}
		return p.caller.headers(id, f.StreamEnded(), func(enc *hpack.Encoder) {
			for _, hf := range f.Fields {
				_ = enc.WriteField(hf)
			}
		})
	case *http2.DataFrame:
		p.grow(id, -int64(f.Length))
		if f.StreamEnded() {
			p.ended(id, false)
		}
		return relayData(p.caller, f)
	case *http2.WindowUpdateFrame:
		return p.caller.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(id, f.Increment) })
	case *http2.RSTStreamFrame:
		p.forget(id, false)
		return p.caller.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, f.ErrCode) })
	case *http2.SettingsFrame:
		return p.settings(p.backend, p.caller, f, http2.SettingInitialWindowSize, http2.SettingMaxConcurrentStreams)
	case *http2.PingFrame:
		return answerPing(p.backend, f)
	case *http2.GoAwayFrame:
		p.mu.Lock()
		p.backendLast = min(p.backendLast, f.LastStreamID)
		p.mu.Unlock()
		return p.caller.write(func(w *http2.Framer) error { return w.WriteGoAway(f.LastStreamID, f.ErrCode, nil) })
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // pushes were turned off
	}
	return nil
}

// zeroPad is the padding of every relayed DATA frame: its length counts,
// its bytes must be zero.
var zeroPad [255]byte

// relayData writes a DATA frame to the side as it came, padding included.
func relayData(to *h2side, f *http2.DataFrame) error {
	data := f.Data()
	return to.write(func(w *http2.Framer) error {
		if f.Flags.Has(http2.FlagDataPadded) {
			pad := int(f.Length) - len(data) - 1
			return w.WriteDataPadded(f.StreamID, f.StreamEnded(), data, zeroPad[:pad])
		}
		return w.WriteData(f.StreamID, f.StreamEnded(), data)
	})
}

// settings acknowledges from's SETTINGS (ignoring its acknowledgements of
// the relay's) and passes the named ones on to the other side.
func (p *pair) settings(from, to *h2side, f *http2.SettingsFrame, passOn ...http2.SettingID) error {
	if f.IsAck() {
		return nil
	}
	out, err := from.apply(f, passOn...)
	if err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return ce
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if err := from.ack(); err != nil {
		return err
	}
	if len(out) == 0 {
		return nil
	}
	if _, ok := p.adopt(from, out); !ok {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	return to.write(func(w *http2.Framer) error { return w.WriteSettings(out...) })
}

// adopt takes into the pair the settings of from's that pass on: the
// caller's initial window, for its open streams; the backend's stream
// limit, capped and made the caller's (out's value too). It reports
// whether out held a stream limit, and whether no window overflowed.
func (p *pair) adopt(from *h2side, out []http2.Setting) (limited, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok = true
	for i, st := range out {
		switch {
		case st.ID == http2.SettingInitialWindowSize && from == p.caller:
			delta := int64(st.Val) - p.initial
			p.initial = int64(st.Val)
			for _, s := range p.streams {
				if s.window += delta; s.window > maxWindow {
					ok = false
				}
			}
		case st.ID == http2.SettingMaxConcurrentStreams:
			p.maxStreams = min(st.Val, relayMaxStreams)
			out[i].Val = p.maxStreams
			limited = true
		}
	}
	return limited, ok
}

// answerPing acknowledges a side's PING on that hop.
func answerPing(s *h2side, f *http2.PingFrame) error {
	if f.IsAck() {
		return nil
	}
	return s.write(func(w *http2.Framer) error { return w.WritePing(true, f.Data) })
}

// admit decides a caller's new stream on its HEADERS, and opens it on the
// backend or refuses it.
func (p *pair) admit(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	length, ok := requestLength(f)
	switch {
	case f.HasPriority() && f.Priority.StreamDep == id, !ok:
		p.refuseStream(id, http2.ErrCodeProtocol)
		return nil
	case f.Truncated:
		p.refuse(id, f.StreamEnded(), connect.NewError(connect.CodeResourceExhausted, errors.New("header list too large")))
		return nil
	}
	p.mu.Lock()
	full := uint32(len(p.streams)) >= p.maxStreams || id > p.backendLast
	p.mu.Unlock()
	if full { // or the backend takes no more streams
		p.refuseStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	var pr *token.Principal
	if p.pol != nil {
		header := make(http.Header, len(f.Fields))
		for _, hf := range f.RegularFields() {
			k := http.CanonicalHeaderKey(hf.Name)
			header[k] = append(header[k], hf.Value)
		}
		if f.PseudoValue("method") != http.MethodPost || !strings.HasPrefix(header.Get("Content-Type"), "application/grpc") {
			// Not a gRPC call: HTTP's answer, 415 Unsupported Media Type.
			_ = p.caller.headers(id, true, func(enc *hpack.Encoder) {
				_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "415"})
			})
			if !f.StreamEnded() {
				p.refuseStream(id, http2.ErrCodeNo)
			}
			return nil
		}
		var err error
		if pr, err = p.decide(f.PseudoValue("path"), header); err != nil {
			p.refuse(id, f.StreamEnded(), err)
			return nil
		}
	}
	p.mu.Lock()
	p.streams[id] = &relayedStream{callerDone: f.StreamEnded(), length: length, window: p.initial}
	p.mu.Unlock()
	return p.backend.headers(id, f.StreamEnded(), func(enc *hpack.Encoder) {
		for _, hf := range f.Fields {
			if p.pol == nil || strings.HasPrefix(hf.Name, ":") || protocolKey(hf.Name) || forwardedKey(hf.Name) {
				_ = enc.WriteField(hf)
			}
		}
		if pr != nil {
			_ = enc.WriteField(hpack.HeaderField{Name: clientIDKey, Value: pr.ClientID})
			_ = enc.WriteField(hpack.HeaderField{Name: tierKey, Value: pr.Tier})
		}
	})
}

// decide runs the gateway's policy code on a call's method and headers.
func (p *pair) decide(path string, header http.Header) (*token.Principal, error) {
	pr, err := p.pol.authorizer.Check(p.ctx, path, header)
	if err != nil {
		return nil, err
	}
	if pr == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("refused"))
	}
	if res, err := p.pol.limiter.Allow(p.ctx, pr.ClientID, p.pol.limit, 1); err != nil || !res.Allowed {
		return nil, connect.NewError(connect.CodeResourceExhausted, errors.New("refused"))
	}
	return pr, nil
}

// requestLength checks a request's header as RFC 9113 section 8.2 asks of
// an intermediary (the pseudo-headers of a request, no connection-specific
// fields, TE only as "trailers") and returns its content-length, -1 if it
// has none; ok is false for a malformed request.
func requestLength(f *http2.MetaHeadersFrame) (length int64, ok bool) {
	if f.PseudoValue("method") == "" || f.PseudoValue("path") == "" || f.PseudoValue("scheme") == "" || f.PseudoValue("status") != "" {
		return 0, false
	}
	length = -1
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return 0, false
		case "te":
			if hf.Value != "trailers" {
				return 0, false
			}
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || length >= 0 && n != length {
				return 0, false
			}
			length = n
		}
	}
	return length, true
}

// protocolKey reports whether a request header of the gRPC protocol's
// passes to the backend as it came: the relay's outbound side is the
// caller's own call.
func protocolKey(k string) bool {
	switch k {
	case "content-type", "te", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding":
		return true
	}
	return false
}

// refuse answers a new stream with a trailers-only gRPC status of err, a
// *connect.Error, and asks the caller to stop sending on it.
func (p *pair) refuse(id uint32, ended bool, err error) {
	code, msg := connect.CodeOf(err), err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	_ = p.caller.headers(id, true, func(enc *hpack.Encoder) {
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
		_ = enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: strconv.Itoa(int(code))})
		_ = enc.WriteField(hpack.HeaderField{Name: "grpc-message", Value: percentEncode(msg)})
		if ce != nil {
			for k, vs := range ce.Meta() {
				for _, v := range vs {
					_ = enc.WriteField(hpack.HeaderField{Name: strings.ToLower(k), Value: v})
				}
			}
		}
	})
	if !ended {
		p.refuseStream(id, http2.ErrCodeNo)
	}
}

// refuseStream resets a caller's stream and drops its frames in flight.
func (p *pair) refuseStream(id uint32, code http2.ErrCode) {
	p.mu.Lock()
	p.reset.add(id)
	p.mu.Unlock()
	_ = p.caller.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, code) })
}

// percentEncode encodes a grpc-message as the gRPC protocol asks: bytes
// outside printable ASCII, and '%', as %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
