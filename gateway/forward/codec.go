package forward

import (
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Message is one request or response message in its encoded form: binary
// protobuf or protobuf JSON, whichever the caller used. The forwarding
// handlers never decode it; interceptors see a *Message as the request's
// Any() and may read its size or bytes, but must not keep the bytes after
// the call: the buffer is reused for the next message of a stream.
type Message struct {
	data []byte
}

// Bytes returns the encoded message. The slice is only valid until the next
// message of the same stream is received.
func (m *Message) Bytes() []byte { return m.data }

// Len returns the size of the encoded message in bytes.
func (m *Message) Len() int { return len(m.data) }

// Codec names as connect registers them: "json; charset=utf-8" is the name
// connect gives to the JSON codec for the Content-Type with a charset
// parameter, which the handler must accept as well.
const (
	codecProto       = "proto"
	codecJSON        = "json"
	codecJSONCharset = "json; charset=utf-8"
)

// passCodec is a connect.Codec that copies bytes instead of encoding. It
// implements connect's optional MarshalAppend so that connect appends the
// payload into its pooled buffer (one copy, no allocation) rather than
// taking ownership of the slice returned by Marshal.
//
// Connect also uses the codec registered as "proto" for messages of its own
// (the google.rpc.Status of gRPC errors), so values that are not a *Message
// fall back to the protobuf runtime.
type passCodec struct {
	name   string
	binary bool
}

var (
	protoCodec       = &passCodec{name: codecProto, binary: true}
	jsonCodec        = &passCodec{name: codecJSON}
	jsonCharsetCodec = &passCodec{name: codecJSONCharset}
)

func (c *passCodec) Name() string { return c.name }

// IsBinary reports whether the codec's output is binary. Connect's GET
// support reads it to decide between base64 and plain query parameters.
func (c *passCodec) IsBinary() bool { return c.binary }

func (c *passCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(*Message); ok {
		// Connect may keep the returned slice in its buffer pool: hand it a
		// copy, never the message's own buffer.
		return append([]byte(nil), m.data...), nil
	}
	return c.marshalProto(nil, v)
}

func (c *passCodec) MarshalAppend(dst []byte, v any) ([]byte, error) {
	if m, ok := v.(*Message); ok {
		return append(dst, m.data...), nil
	}
	return c.marshalProto(dst, v)
}

// MarshalStable is Marshal: the bytes are passed through as they came.
func (c *passCodec) MarshalStable(v any) ([]byte, error) { return c.Marshal(v) }

func (c *passCodec) Unmarshal(data []byte, v any) error {
	if m, ok := v.(*Message); ok {
		// data belongs to connect's buffer pool: copy it, reusing the
		// message's buffer when a stream receives into the same Message.
		m.data = append(m.data[:0], data...)
		return nil
	}
	msg, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("forward: cannot unmarshal into %T", v)
	}
	if c.binary {
		return proto.Unmarshal(data, msg)
	}
	return protojson.Unmarshal(data, msg)
}

func (c *passCodec) marshalProto(dst []byte, v any) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("forward: cannot marshal %T", v)
	}
	if c.binary {
		return proto.MarshalOptions{}.MarshalAppend(dst, msg)
	}
	b, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

var _ connect.Codec = (*passCodec)(nil)
