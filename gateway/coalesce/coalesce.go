// Package coalesce joins the writes that net/http's HTTP/2 client makes
// one after the other for the same request on a plaintext connection
// (h2c): a header block that opens a body waits for that body and goes out
// in the same write (one syscall, one TCP segment), where net/http writes
// and flushes each by itself.
//
// net/http's HTTP/2 client flushes a request's HEADERS frame before it
// writes the request's first DATA frame: two writes per unary request to a
// backend, where one would do. That flush measured 6.6% of the gateway's
// CPU (BENCHMARKS.md). The client has no setting for it, so the connection
// beneath it does it.
//
// The rule is narrow: a write that ends with a complete header block
// without END_STREAM (the body is still to come) is held, and goes out
// with the next write, which for a unary request follows within
// microseconds, from the same goroutine. A write that ends otherwise
// (DATA, trailers, SETTINGS, PING, GOAWAY) goes out at once, with what
// was held before it; the header blocks of several streams opened at once
// may wait together, up to 64 KiB. So the bytes on the wire are the same,
// in the same order; only their grouping into writes changes.
//
// Where a body may not follow at once, the layer above says so with
// [Conn.Flush]: the forwarding does, before it reads a streaming request's
// body (it opens a bidi stream to its backend with the headers alone,
// since either side may speak first). net/http's client writes a request's
// headers and then reads its body on one goroutine, so that flush always
// comes after the headers it is for. A block that nothing followed and no
// one flushed (a case the layer above did not foresee) goes out after
// [HoldFor]: a timer armed when a block is held and not stopped when it
// goes out, so that it fires at most once per period on a busy connection.
// Arming and stopping a timer per block would wake another thread on every
// call (Go wakes its network poller for a timer earlier than any it has),
// which costs what the joined write saves.
//
// A body can wait for the backend's flow control: net/http writes no DATA
// before the backend grants a window. A backend that grants none before
// it has seen a request's headers (SETTINGS_INITIAL_WINDOW_SIZE of 0)
// would make every request wait for the timer, so the connection reads
// the backend's SETTINGS as they pass and holds nothing while that window
// is 0. A connection whose whole window is spent by other requests' bodies
// still holds a new request's headers until its body can go, or HoldFor.
//
// Only the client side is wrapped. net/http's HTTP/2 server writes frames
// from one goroutine per connection, after the handler that asked for
// them has gone on, so no flush from a handler can be ordered after the
// headers it is for: a response's headers that open a stream would wait
// for the timer. The server's three writes per unary response (headers,
// DATA, trailers) stay.
//
// A connection that does not start with the client preface is passed
// through untouched. Over TLS the bytes beneath crypto/tls are records,
// not frames, so only plaintext connections are wrapped.
package coalesce

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HoldFor is the longest a header block waits for the body that follows
// it when no one flushes it.
const HoldFor = 20 * time.Millisecond

// maxHeld is the most a connection holds; a write that would hold more goes
// out at once.
const maxHeld = 64 << 10

// keptBuffer is the largest held buffer a connection keeps between writes,
// and the largest write joined to what is held by copying; a larger one
// goes out with it as two buffers in one writev.
const keptBuffer = 4 << 10

// clientPreface is what an HTTP/2 client writes first (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags the parser knows (RFC 9113 §6).
const (
	frameHeaders      = 0x1
	frameSettings     = 0x4
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagAck           = 0x1
	flagEndHeaders    = 0x4
	frameHeaderLen    = 9

	settingInitialWindowSize = 0x4
	settingLen               = 6
)

// Conn is an HTTP/2 client's connection whose writes are coalesced. Reads,
// deadlines and addresses are those of the connection it wraps.
type Conn struct {
	net.Conn

	mu      sync.Mutex
	started bool // the first write was seen
	on      bool // it speaks HTTP/2: writes are parsed and may be held
	frames  frameParser
	held    []byte
	err     error // a held write that failed; every later write fails with it

	timer  *time.Timer // writes a block no one flushed
	armed  bool
	closed bool

	reads    settingsReader // the backend's frames, for its SETTINGS; the reading goroutine's own
	noWindow atomic.Bool    // the backend's initial stream window is 0: hold nothing
}

// Client wraps the connection an HTTP/2 client dials, before it writes the
// client preface.
func Client(c net.Conn) *Conn { return &Conn{Conn: c} }

// Write writes p, or holds it when it ends with a header block whose body
// is still to come; what was held goes out first, in the same write.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.err != nil {
		return 0, c.err
	}
	if !c.started {
		c.started = true
		c.on = bytes.HasPrefix(p, []byte(clientPreface))
		if c.on {
			c.frames.feed(p[len(clientPreface):])
		}
	} else if c.on {
		c.frames.feed(p)
	}
	if c.on && c.frames.opensBody() && len(c.held)+len(p) <= maxHeld && !c.noWindow.Load() {
		c.held = append(c.held, p...)
		c.arm()
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	return c.writeHeld(p)
}

// writeHeld writes what is held, then p, in one write, empties the held
// buffer and returns how much of p went out; c.mu is held. A failed write
// fails every later one: bytes already reported written may be lost, and
// what follows them would not parse.
func (c *Conn) writeHeld(p []byte) (int, error) {
	held := len(c.held)
	var n int
	var err error
	if len(p) <= keptBuffer {
		// One buffer, one Write: the connection beneath may not gather
		// buffers (net.Buffers writes them one by one to anything but a
		// bare *net.TCPConn).
		c.held = append(c.held, p...)
		n, err = c.Conn.Write(c.held)
	} else {
		bufs := net.Buffers{c.held, p}
		var n64 int64
		n64, err = bufs.WriteTo(c.Conn)
		n = int(n64)
	}
	c.release()
	if err != nil {
		c.err = err
	}
	return max(n-held, 0), err
}

// Read reads from the connection, and notes the backend's initial stream
// window from the SETTINGS frames that pass.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.feed(p[:n], c.setWindow)
	}
	return n, err
}

// setWindow notes the backend's SETTINGS_INITIAL_WINDOW_SIZE; while it is
// 0, nothing is held. What is held when it becomes 0 goes out from a
// goroutine of its own: the reading goroutine must not wait for a write,
// which may be blocked on a backend that is itself blocked on the reads.
func (c *Conn) setWindow(size uint32) {
	if was := c.noWindow.Swap(size == 0); size == 0 && !was {
		go c.Flush()
	}
}

// arm starts the timer, unless it runs.
func (c *Conn) arm() {
	if c.armed || c.closed {
		return
	}
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(HoldFor, c.expire)
		return
	}
	c.timer.Reset(HoldFor)
}

// expire writes what is held when the timer fires: a block that no write
// followed and no one flushed, or one held a moment ago, which loses only
// its company.
func (c *Conn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	c.flushLocked()
}

// Flush writes what is held now, and returns the error of the last write
// that failed, if any.
func (c *Conn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	return c.err
}

// flushLocked writes what is held; c.mu is held.
func (c *Conn) flushLocked() {
	if len(c.held) == 0 || c.err != nil {
		return
	}
	_, _ = c.writeHeld(nil) // the error is kept in c.err
}

// release empties the held buffer, keeping it only while it is small: an
// idle connection keeps at most keptBuffer bytes.
func (c *Conn) release() {
	if cap(c.held) > keptBuffer {
		c.held = nil
		return
	}
	c.held = c.held[:0]
}

// Close closes the connection first, so that a write blocked on a backend
// that stopped reading returns, and drops what is held: a header block
// whose stream ends with its connection.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	c.closed = true
	c.held = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return err
}

// frameCursor follows the frame boundaries of a byte stream given in
// chunks that split frames anywhere.
type frameCursor struct {
	header    [frameHeaderLen]byte // the current frame's header
	headerLen int                  // bytes of the next frame's header seen
	remaining uint32               // payload bytes of the current frame still to come
}

// next takes bytes of p up to the next boundary: the rest of a frame's
// header, or of its payload. It returns the rest of p, the payload bytes
// taken, and whether a frame's header was completed.
func (c *frameCursor) next(p []byte) (rest, payload []byte, started bool) {
	if c.remaining > 0 {
		n := min(uint32(len(p)), c.remaining)
		c.remaining -= n
		return p[n:], p[:n], false
	}
	n := copy(c.header[c.headerLen:], p)
	if c.headerLen += n; c.headerLen < frameHeaderLen {
		return p[n:], nil, false
	}
	c.headerLen = 0
	c.remaining = uint32(c.header[0])<<16 | uint32(c.header[1])<<8 | uint32(c.header[2])
	return p[n:], nil, true
}

// between tells whether the bytes so far end on a frame boundary.
func (c *frameCursor) between() bool { return c.headerLen == 0 && c.remaining == 0 }

// frameParser follows the frames written, for the header blocks that
// open a body.
type frameParser struct {
	cursor    frameCursor
	blockEnds bool // the header block in progress has END_STREAM
	open      bool // the last whole frame ended a header block without END_STREAM
}

// feed takes the next bytes written.
func (f *frameParser) feed(p []byte) {
	for len(p) > 0 {
		var payload []byte
		var started bool
		p, payload, started = f.cursor.next(p)
		if started {
			f.open = false // a frame is in progress
		}
		if (started || len(payload) > 0) && f.cursor.remaining == 0 {
			f.frameDone(f.cursor.header[3], f.cursor.header[4])
		}
	}
}

// frameDone notes the frame just completed.
func (f *frameParser) frameDone(typ, flags byte) {
	switch typ {
	case frameHeaders:
		f.blockEnds = flags&flagEndStream != 0
		f.open = flags&flagEndHeaders != 0 && !f.blockEnds
	case frameContinuation:
		f.open = flags&flagEndHeaders != 0 && !f.blockEnds
	default:
		f.open = false
	}
}

// opensBody tells whether the bytes so far end, on a frame boundary, with
// a header block whose stream's body is still to come.
func (f *frameParser) opensBody() bool { return f.open && f.cursor.between() }

// settingsReader follows the frames read, and reports the value of each
// SETTINGS_INITIAL_WINDOW_SIZE the peer sends.
type settingsReader struct {
	cursor   frameCursor
	settings bool // the current frame is a SETTINGS frame, not an ACK
	entry    [settingLen]byte
	entryLen int
}

// feed takes the next bytes read, and calls window with each initial
// window size they set.
func (r *settingsReader) feed(p []byte, window func(uint32)) {
	for len(p) > 0 {
		var payload []byte
		var started bool
		p, payload, started = r.cursor.next(p)
		if started {
			r.settings = r.cursor.header[3] == frameSettings && r.cursor.header[4]&flagAck == 0
			r.entryLen = 0
		}
		if !r.settings {
			continue
		}
		for _, b := range payload {
			r.entry[r.entryLen] = b
			if r.entryLen++; r.entryLen == settingLen {
				r.entryLen = 0
				if binary.BigEndian.Uint16(r.entry[:2]) == settingInitialWindowSize {
					window(binary.BigEndian.Uint32(r.entry[2:]))
				}
			}
		}
	}
}
