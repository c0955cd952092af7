package ratelimit

import (
	"connectrpc.com/connect"

	"github.com/portcullis/portcullis/gateway/token"
)

// limitedConn limits the messages a handler receives on one stream. Its
// state is one theoretical arrival time: a stream lives on one gateway, so
// no store is involved. Receive is not called concurrently with itself.
type limitedConn struct {
	connect.StreamingHandlerConn
	limit     Limit
	principal *token.Principal // the caller, nil for an anonymous one
	now       func() int64     // Unix ns
	tat       int64
	err       *connect.Error // set once the limit is exceeded
}

// Receive receives a message, then counts it; a message over the limit is
// dropped and the stream fails from then on. Counting after receiving
// means a client that sends exactly its budget and closes its side sees no
// error.
func (c *limitedConn) Receive(msg any) error {
	if c.err != nil {
		return c.err
	}
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	var res Result
	c.tat, res = gcra(c.tat, c.now(), c.limit, 1)
	if res.Allowed {
		return nil
	}
	c.err = limitedError(c.Spec().Procedure, c.Peer().Protocol, true, c.principal, res)
	setHeaders(c.err.Meta(), policyValue(Limit{}, c.limit), policyMessages, res)
	return c.err
}
