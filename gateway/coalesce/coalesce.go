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
// The rule is narrow so that it costs no latency: a write that ends with a
// complete header block without END_STREAM (the body is still to come) is
// held, and goes out with the next write, which for a unary request
// follows within microseconds, from the same goroutine. Nothing else is
// held: DATA, trailers, SETTINGS, PING and GOAWAY go out at once, with
// what was held before them. So the bytes on the wire are the same, in the
// same order; only their grouping into writes changes.
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
// Only the client side is wrapped. net/http's HTTP/2 server writes frames
// from one goroutine per connection, after the handler that asked for
// them has gone on, so no flush from a handler can be ordered after the
// headers it is for: a response's headers that open a stream would wait
// for the timer. The server's third write per unary response (headers,
// DATA, trailers) stays.
//
// A connection that does not start with the client preface is passed
// through untouched. Over TLS the bytes beneath crypto/tls are records,
// not frames, so only plaintext connections are wrapped.
package coalesce

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// HoldFor is the longest a header block waits for the body that follows
// it when no one flushes it.
const HoldFor = 20 * time.Millisecond

// maxHeld is the most a connection holds; a write that would hold more goes
// out at once.
const maxHeld = 64 << 10

// keptBuffer is the largest held buffer a connection keeps between writes.
const keptBuffer = 4 << 10

// clientPreface is what an HTTP/2 client writes first (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags the parser knows (RFC 9113 §6).
const (
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndStream     = 0x1
	flagEndHeaders    = 0x4
	frameHeaderLen    = 9
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
}

// Client wraps the connection an HTTP/2 client dials, before it writes the
// client preface.
func Client(c net.Conn) *Conn { return &Conn{Conn: c} }

// Write writes p, or holds it when it ends with a header block whose body
// is still to come; what was held goes out first, in the same write.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if c.on && c.frames.opensBody() && len(c.held)+len(p) <= maxHeld {
		c.held = append(c.held, p...)
		c.arm()
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	// One buffer, one Write: the connection beneath may not gather
	// buffers (net.Buffers writes them one by one to anything but a bare
	// *net.TCPConn), and what is joined is a header block and the body's
	// first frame.
	held := len(c.held)
	c.held = append(c.held, p...)
	n, err := c.Conn.Write(c.held)
	c.release()
	if n -= held; n < 0 {
		n = 0
	}
	return n, err
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
	_, err := c.Conn.Write(c.held)
	c.release()
	if err != nil {
		c.err = err
	}
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

// Close writes what is held, then closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.flushLocked()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// frameParser follows the frame boundaries of the bytes written, across
// writes that split frames anywhere.
type frameParser struct {
	header    [frameHeaderLen]byte
	headerLen int    // bytes of the current frame's header seen
	remaining uint32 // payload bytes of the current frame still to come
	typ       byte   // the current frame's type and flags
	flags     byte
	blockEnds bool // the header block in progress has END_STREAM
	open      bool // the last whole frame ended a header block without END_STREAM
}

// feed takes the next bytes written.
func (f *frameParser) feed(p []byte) {
	for len(p) > 0 {
		if f.remaining > 0 {
			n := uint32(len(p))
			if n > f.remaining {
				n = f.remaining
			}
			f.remaining -= n
			p = p[n:]
			if f.remaining == 0 {
				f.frameDone()
			}
			continue
		}
		n := copy(f.header[f.headerLen:], p)
		f.headerLen += n
		p = p[n:]
		if f.headerLen < frameHeaderLen {
			continue
		}
		f.headerLen = 0
		f.remaining = uint32(f.header[0])<<16 | uint32(f.header[1])<<8 | uint32(f.header[2])
		f.typ, f.flags = f.header[3], f.header[4]
		f.open = false // a frame is in progress
		if f.remaining == 0 {
			f.frameDone()
		}
	}
}

// frameDone notes the frame just completed.
func (f *frameParser) frameDone() {
	switch f.typ {
	case frameHeaders:
		f.blockEnds = f.flags&flagEndStream != 0
		f.open = f.flags&flagEndHeaders != 0 && !f.blockEnds
	case frameContinuation:
		f.open = f.flags&flagEndHeaders != 0 && !f.blockEnds
	default:
		f.open = false
	}
}

// opensBody tells whether the bytes so far end, on a frame boundary, with
// a header block whose stream's body is still to come.
func (f *frameParser) opensBody() bool {
	return f.open && f.headerLen == 0 && f.remaining == 0
}
