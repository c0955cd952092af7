package gateway

import (
	"bufio"
	"net"
)

// readBufferSize is what each plaintext connection reads ahead: a few
// frames of the calls most clients make.
const readBufferSize = 4 << 10

// bufferedListener hands out connections whose reads go through a
// buffer. net/http's HTTP/2 server reads each frame straight from its
// connection, the 9-byte header and then the payload: on h2c, two read
// syscalls per frame, which measured a fifth of the gateway's CPU on bidi
// streams (BENCHMARKS.md). Through the buffer, the frames that arrived
// together cost one. Over TLS, crypto/tls already reads whole records, so
// only the plaintext listener is wrapped.
type bufferedListener struct{ net.Listener }

// Accept returns the next connection, buffered.
func (l bufferedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
}

// bufferedConn is a connection read through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads from the buffer, refilling it from the connection when empty;
// a read as large as the buffer goes to the connection directly.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite shuts the sending side, as net/http does before it closes an
// HTTP/1.1 connection, so that the client reads the last response whole.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
