package rest

import (
	"errors"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonCodec is the transcoder's JSON codec whose decoding errors are the
// caller's (InvalidArgument, 400): the transcoder reports a malformed REST
// body as Unknown (500) otherwise. With the proto target codec, JSON only
// ever decodes what REST callers send.
type jsonCodec struct {
	*vanguard.JSONCodec
}

func newJSONCodec(types vanguard.TypeResolver) vanguard.Codec {
	return jsonCodec{vanguard.NewJSONCodec(types)}
}

func (c jsonCodec) Unmarshal(data []byte, msg proto.Message) error {
	return invalidArgument(c.JSONCodec.Unmarshal(data, msg))
}

func (c jsonCodec) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return invalidArgument(c.JSONCodec.UnmarshalField(data, msg, field))
}

func invalidArgument(err error) error {
	var ce *connect.Error
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return connect.NewError(connect.CodeInvalidArgument, err)
}

var (
	_ vanguard.RESTCodec   = jsonCodec{}
	_ vanguard.StableCodec = jsonCodec{}
)
