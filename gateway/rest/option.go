package rest

import (
	"errors"
	"fmt"
	"math"

	"connectrpc.com/vanguard"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// DefaultMaxMessageBytes is the largest REST request or response body, and
// message, that a [Handler] buffers unless [WithMaxMessageBytes] says
// otherwise: the gateway's default message limit.
const DefaultMaxMessageBytes = 4 << 20

// Option configures [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	codec           string
	maxMessageBytes uint32
	types           vanguard.TypeResolver
	errs            []error
}

func newConfig(opts []Option) (*config, error) {
	c := &config{codec: vanguard.CodecProto, maxMessageBytes: DefaultMaxMessageBytes}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c, errors.Join(c.errs...)
}

// TypeResolver finds the message types of requests and responses, and of
// the google.protobuf.Any values in them (such as error details), for the
// messages a REST call decodes. A *[google.golang.org/protobuf/types/dynamicpb.Types]
// over a protoregistry.Files serves descriptors loaded at run time.
type TypeResolver interface {
	protoregistry.MessageTypeResolver
	protoregistry.ExtensionTypeResolver
}

// WithTypeResolver sets where the types of the messages come from. By
// default, a compiled-in service's come from protoregistry.GlobalTypes and
// others' are dynamic messages of the service's file and its imports. The
// resolver given here is tried first and protoregistry.GlobalTypes then, so
// that the details of errors resolve however the services were loaded:
//
//	rest.WithTypeResolver(dynamicpb.NewTypes(catalog.Files()))
func WithTypeResolver(types TypeResolver) Option {
	return optionFunc(func(c *config) {
		if types == nil {
			c.errs = append(c.errs, errors.New("rest: nil type resolver"))
			return
		}
		c.types = fallback{types, protoregistry.GlobalTypes}
	})
}

// WithMaxMessageBytes limits the REST request and response bodies, and
// messages, that a call buffers while transcoding; a call over it fails
// with ResourceExhausted (HTTP 429). The default is [DefaultMaxMessageBytes].
func WithMaxMessageBytes(n int64) Option {
	return optionFunc(func(c *config) {
		if n < 1 || n > math.MaxUint32 {
			c.errs = append(c.errs, fmt.Errorf("rest: max message bytes %d is not from 1 to %d", n, uint32(math.MaxUint32)))
			return
		}
		c.maxMessageBytes = uint32(n)
	})
}

// WithTargetCodec sets the codec of the Connect calls a REST call becomes:
// "proto" (the default) or "json". With proto, every backend can serve
// REST calls, gRPC-only ones too, and REST responses are written by one
// JSON encoder whatever the backend; with json, a body passes through
// undecoded when the request needs no path or query fields and the
// response no response_body, but the backend must accept JSON.
func WithTargetCodec(name string) Option {
	return optionFunc(func(c *config) {
		if name != vanguard.CodecProto && name != vanguard.CodecJSON {
			c.errs = append(c.errs, fmt.Errorf("rest: target codec %q is neither proto nor json", name))
			return
		}
		c.codec = name
	})
}
